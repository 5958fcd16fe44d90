#include "commands/progress_display.h"

#include <unistd.h>

#include <fmt/format.h>

#include <cstdlib>
#include <iostream>

namespace mexport {
namespace {

constexpr auto kRedrawInterval = std::chrono::milliseconds(100);

// One second, or $MEXPORT_PROGRESS_DELAY seconds: the tests set 0 to see the
// stages of an export that is over quicker than that.
std::chrono::steady_clock::duration progressDelay() {
  double seconds = 1.0;
  if (const char* text = std::getenv("MEXPORT_PROGRESS_DELAY")) {
    char* end = nullptr;
    const double value = std::strtod(text, &end);
    if (end != text && *end == '\0' && value >= 0) seconds = value;
  }
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(seconds));
}

std::string countText(int64_t done, int64_t total, ProgressListener::Unit unit) {
  if (unit == ProgressListener::Unit::kBytes)
    return total > 0 ? fmt::format("{:.1f}/{:.1f} MB", done / 1e6, total / 1e6)
                     : fmt::format("{:.1f} MB", done / 1e6);
  return total > 0 ? fmt::format("{}/{} nodes", done, total) : fmt::format("{} nodes", done);
}

}  // namespace

ProgressDisplay::ProgressDisplay(bool quiet, bool verbose)
    : verbose_(verbose),
      line_(!quiet && !verbose && ::isatty(STDERR_FILENO) != 0),
      delay_(progressDelay()) {
  if (line_) redraw_thread_ = std::thread([this] { redrawLoop(); });
}

ProgressDisplay::~ProgressDisplay() { finish(); }

void ProgressDisplay::stage(const std::string& name, const std::string& description) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (verbose_) std::cerr << "mexport: " << description << "\n";
  // Each stage is drawn as it starts and as it ends, however short it is.
  if (showing()) drawLocked();
  stage_ = name;
  stage_start_ = Clock::now();
  done_.store(0, std::memory_order_relaxed);
  total_.store(0, std::memory_order_relaxed);
  hidden_ = false;
  if (showing()) drawLocked();
}

void ProgressDisplay::advance(int64_t done, int64_t total, Unit unit) {
  done_.store(done, std::memory_order_relaxed);
  total_.store(total, std::memory_order_relaxed);
  unit_.store(unit, std::memory_order_relaxed);
}

void ProgressDisplay::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  eraseLocked();
  hidden_ = true;
}

void ProgressDisplay::finish() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (showing()) drawLocked();  // the last stage as it ends
    finished_ = true;
    eraseLocked();
  }
  wake_.notify_all();
  if (redraw_thread_.joinable()) redraw_thread_.join();
}

void ProgressDisplay::redrawLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!finished_) {
    wake_.wait_for(lock, kRedrawInterval);
    if (showing()) drawLocked();
  }
}

bool ProgressDisplay::showing() const {
  return line_ && !finished_ && !hidden_ && !stage_.empty() && Clock::now() - start_ >= delay_;
}

void ProgressDisplay::drawLocked() {
  const int64_t done = done_.load(std::memory_order_relaxed);
  const double seconds = std::chrono::duration<double>(Clock::now() - stage_start_).count();
  std::string text = fmt::format("mexport: [{}] ", stage_);
  if (done > 0)
    text += countText(done, total_.load(std::memory_order_relaxed),
                      unit_.load(std::memory_order_relaxed)) +
            " ";
  text += fmt::format("({:.1f} s)", seconds);
  std::cerr << "\r\033[K" << text << std::flush;
  drawn_ = true;
}

void ProgressDisplay::eraseLocked() {
  if (!drawn_) return;
  std::cerr << "\r\033[K" << std::flush;
  drawn_ = false;
}

}  // namespace mexport
