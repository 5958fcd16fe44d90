// An export's progress on the console. With --verbose, one line per stage.
// Otherwise, when stderr is a terminal and the export has run for a second,
// one line that updates in place, `mexport: [lower] 1234/5678 nodes (0.4 s)`,
// redrawn at most ten times a second by a thread of its own so that a long
// stage that reports nothing (loading) still shows its time. Nothing in a
// pipe or with --quiet.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "progress.h"

namespace mexport {

class ProgressDisplay final : public ProgressListener {
 public:
  ProgressDisplay(bool quiet, bool verbose);
  ~ProgressDisplay() override;  // finish()
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;

  void stage(const std::string& name, const std::string& description) override;
  void advance(int64_t done, int64_t total, Unit unit) override;
  // Erases the line so that something else can be printed; the next stage
  // shows it again.
  void clear();
  // Stops drawing for good and erases the line.
  void finish();

 private:
  using Clock = std::chrono::steady_clock;

  void redrawLoop();
  // The line is on (a terminal, not cleared, not finished) and the export has
  // run long enough to show it. With mutex_ held.
  bool showing() const;
  void drawLocked();   // with mutex_ held
  void eraseLocked();  // with mutex_ held

  const bool verbose_;
  const bool line_;  // an updating line on a terminal
  const Clock::time_point start_ = Clock::now();
  const Clock::duration delay_;

  std::mutex mutex_;  // guards what follows, and the terminal
  std::condition_variable wake_;
  bool finished_ = false;
  bool hidden_ = false;  // cleared until the next stage
  bool drawn_ = false;   // a line is on the screen
  std::string stage_;
  Clock::time_point stage_start_ = start_;
  // advance() only stores these, for the redraw thread to read.
  std::atomic<int64_t> done_{0}, total_{0};
  std::atomic<Unit> unit_{Unit::kNodes};
  std::thread redraw_thread_;
};

}  // namespace mexport
