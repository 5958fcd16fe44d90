#include "deadline.h"

#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

namespace mexport {
namespace {

// What the worker thread shares with the waiting one; owned by both, so that
// an abandoned worker still writes to live memory.
struct WorkState {
  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
  std::exception_ptr error;
};

}  // namespace

void printErrorLine(const std::string& message) {
  std::cerr << (::isatty(STDERR_FILENO) ? "\r\033[K" : "")
            << "mexport: error: " << message.substr(0, message.find('\n')) << "\n";
}

void runWithDeadline(const std::string& stage, const std::string& setting, double seconds,
                     const std::function<void()>& work, const std::function<std::string()>& where) {
  if (!(seconds > 0)) return work();
  auto state = std::make_shared<WorkState>();
  std::thread([state, work] {
    std::exception_ptr error;
    try {
      work();
    } catch (...) {
      error = std::current_exception();
    }
    const std::lock_guard<std::mutex> lock(state->mutex);
    state->error = error;
    state->done = true;
    state->finished.notify_one();
  }).detach();
  std::unique_lock<std::mutex> lock(state->mutex);
  if (!state->finished.wait_for(lock, std::chrono::duration<double>(seconds),
                                [&] { return state->done; })) {
    printErrorLine(
        fmt::format("{} did not finish within {:g} s ({}); {}", stage, seconds, setting, where()));
    std::fflush(nullptr);
    std::_Exit(1);
  }
  if (state->error) std::rethrow_exception(state->error);
}

}  // namespace mexport
