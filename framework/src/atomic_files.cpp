// OutputFiles: all-or-nothing output, safe against write errors, signals and
// concurrent exports into the same directory.
#include "atomic_files.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <filesystem>
#include <set>

#include "mexport/emitter.h"
#include "mexport/errors.h"

namespace mexport {

namespace fs = std::filesystem;

namespace {

// The temporaries being written, in a fixed table a signal handler can read
// without allocating or locking. A slot is claimed (the handler ignores it)
// while its path is copied in, then live (the handler unlinks it).
enum SlotState : int { kFree, kClaimed, kLive };
struct TemporarySlot {
  std::atomic<int> state{kFree};
  char path[PATH_MAX];
};
// An export stages five files; validate --save-outputs one per model output.
// Untouched slots cost no memory (zero pages).
constexpr int kMaxTemporaries = 1024;
TemporarySlot g_temporaries[kMaxTemporaries];

// While commit() renames, a signal waits until the whole set is in place,
// whichever thread the handler runs on.
std::atomic<bool> g_committing{false};
std::atomic<int> g_deferred_signal{0};
bool g_stderr_is_terminal = false;
std::atomic<unsigned> g_temporary_counter{0};
std::atomic<int64_t> g_io_nanoseconds{0};

// Adds the time from construction to destruction to outputIoSeconds().
class IoTimer {
 public:
  ~IoTimer() {
    g_io_nanoseconds += std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now() - start_)
                            .count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

int claimSlot(const std::string& path) {
  if (path.size() >= PATH_MAX)
    throw ExportError(fmt::format("cannot write '{}': the path is too long", path));
  for (int i = 0; i < kMaxTemporaries; ++i) {
    int expected = kFree;
    if (!g_temporaries[i].state.compare_exchange_strong(expected, kClaimed)) continue;
    std::memcpy(g_temporaries[i].path, path.c_str(), path.size() + 1);
    g_temporaries[i].state.store(kLive);
    return i;
  }
  throw ExportError(
      fmt::format("cannot write '{}': more than {} output files at once", path, kMaxTemporaries));
}

void releaseSlot(int slot) {
  if (slot >= 0) g_temporaries[slot].state.store(kFree);
}

const char* signalMessage(int signal) {
  switch (signal) {
    case SIGINT:
      return "mexport: error: interrupted by SIGINT; unfinished output files were removed\n";
    case SIGTERM:
      return "mexport: error: interrupted by SIGTERM; unfinished output files were removed\n";
    default:
      return "mexport: error: interrupted by SIGHUP; unfinished output files were removed\n";
  }
}

// Async-signal-safe: atomics, unlink, write, sigaction and raise only.
void onTerminatingSignal(int signal) {
  if (g_committing.load()) {
    g_deferred_signal.store(signal);
    return;
  }
  for (TemporarySlot& slot : g_temporaries)
    if (slot.state.load() == kLive) ::unlink(slot.path);
  if (g_stderr_is_terminal) {  // clear the progress line first
    const char clear[] = "\r\033[K";
    [[maybe_unused]] const ssize_t cleared = ::write(STDERR_FILENO, clear, sizeof clear - 1);
  }
  const char* message = signalMessage(signal);
  [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, message, std::strlen(message));
  // Die by the same signal, as the default action would have.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  ::sigaction(signal, &default_action, nullptr);
  ::raise(signal);
}

// Holds signals back for the renames of a commit; a signal that came
// meanwhile is delivered once the set is in place.
class SignalsDeferred {
 public:
  SignalsDeferred() { g_committing.store(true); }
  ~SignalsDeferred() {
    g_committing.store(false);
    if (const int signal = g_deferred_signal.exchange(0)) ::raise(signal);
  }
  SignalsDeferred(const SignalsDeferred&) = delete;
  SignalsDeferred& operator=(const SignalsDeferred&) = delete;
};

// Exclusive flock()s on directories, taken in sorted order so that two
// commits never wait for each other. A directory that cannot be opened is not
// locked: its commit is still atomic per file.
class DirectoryLocks {
 public:
  explicit DirectoryLocks(const std::set<std::string>& directories) {
    for (const auto& directory : directories) {
      const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) continue;
      while (::flock(fd, LOCK_EX) != 0 && errno == EINTR) {
      }
      fds_.push_back(fd);
    }
  }
  ~DirectoryLocks() {
    for (const int fd : fds_) ::close(fd);
  }
  DirectoryLocks(const DirectoryLocks&) = delete;
  DirectoryLocks& operator=(const DirectoryLocks&) = delete;

 private:
  std::vector<int> fds_;
};

// The directory holding `path`, resolved so that one directory reached by two
// spellings is locked once.
std::string directoryOf(const std::string& path) {
  fs::path directory = fs::absolute(fs::path(path)).parent_path();
  std::error_code ec;
  const fs::path canonical = fs::canonical(directory, ec);
  return (ec ? directory.lexically_normal() : canonical).string();
}

std::string writeFailure(const std::string& path, int error) {
  const char* what_to_do = "check the output path";
  if (error == ENOSPC || error == EDQUOT)
    what_to_do = "free some space or choose another output directory";
  else if (error == EACCES || error == EPERM || error == EROFS)
    what_to_do = "choose an output directory you can write to";
  return fmt::format("cannot write '{}': {}; {}", path, std::strerror(error), what_to_do);
}

// write() is given at most 1 MiB at a time. On Linux 6.x a larger write into
// ext4's page cache gets 2 MiB folios, and on a VM whose host takes back the
// guest's free memory, those come from blocks the host must back again page
// by page: 440 MB took 1.9 s in 4 MiB writes and 0.14 s in 1 MiB ones here.
constexpr size_t kWritePiece = size_t{1} << 20;

// Writes all of `bytes` to `fd`; returns 0 or the errno of the failure.
int writeAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), std::min(bytes.size(), kWritePiece));
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    bytes.remove_prefix(static_cast<size_t>(written));
  }
  return 0;
}

// Writes a new regular file and starts its writeback every 8 MiB, as
// RocksDB's bytes_per_sync does, so the disk works while the rest is written
// and the closing fsync finds little left: 440 MB wrote and synced in 0.29 s
// instead of 0.41 s here.
class FileWriter {
 public:
  explicit FileWriter(int fd) : fd_(fd) {}

  // Keeps the first error; later pieces are dropped.
  void append(std::string_view bytes) {
    if (error_ != 0) return;
    IoTimer timer;
    error_ = writeAll(fd_, bytes);
    written_ += static_cast<off_t>(bytes.size());
    if (error_ == 0 && written_ - synced_ >= kWritebackEvery) {
      // Only a hint: errors surface in fsync.
      ::sync_file_range(fd_, synced_, written_ - synced_, SYNC_FILE_RANGE_WRITE);
      synced_ = written_;
    }
  }

  // fsync and close, which report errors (a full disk) that write() may not.
  int finish() {
    IoTimer timer;
    if (error_ == 0 && ::fsync(fd_) != 0) error_ = errno;
    if (::close(fd_) != 0 && error_ == 0) error_ = errno;
    return error_;
  }

 private:
  static constexpr off_t kWritebackEvery = off_t{8} << 20;
  int fd_;
  int error_ = 0;
  off_t written_ = 0;
  off_t synced_ = 0;
};

// A device or FIFO: opened as it is, neither created nor replaced. Opening a
// FIFO waits for its reader.
void writeInPlace(const std::string& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw ExportError(writeFailure(path, errno));
  int error = writeAll(fd, bytes);
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) throw ExportError(writeFailure(path, error));
}

}  // namespace

double outputIoSeconds() { return 1e-9 * static_cast<double>(g_io_nanoseconds.load()); }

void installOutputSignalHandlers() {
  g_stderr_is_terminal = ::isatty(STDERR_FILENO) != 0;
  struct sigaction action {};
  action.sa_handler = onTerminatingSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (const int signal : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction previous {};
    if (::sigaction(signal, nullptr, &previous) == 0 && previous.sa_handler == SIG_IGN) continue;
    ::sigaction(signal, &action, nullptr);
  }
}

OutputFiles::~OutputFiles() { discard(); }

void OutputFiles::write(const std::string& path, std::string_view bytes) {
  writeStreaming(path, [&](const ByteSink& sink) { sink(bytes); });
}

void OutputFiles::writeStreaming(const std::string& path, const Producer& produce) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (fs::path(path).filename().empty() || fs::is_directory(status))
    throw UsageError(
        fmt::format("output '{}' is a directory; give the path of the file to write", path));
  if (fs::exists(status) && !fs::is_regular_file(status)) {
    std::string bytes;
    produce([&](std::string_view piece) { bytes.append(piece); });
    staged_.push_back({path, "", std::move(bytes), -1});
    return;
  }
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) {
    fs::create_directories(parent, ec);
    if (ec)
      throw ExportError(
          fmt::format("cannot create the output directory '{}': {}; choose a directory you can "
                      "write to",
                      parent.string(), ec.message()));
  }
  // A fresh name per file (process id and counter) opened with O_EXCL: never
  // another process's temporary, nor a file or symlink planted at that name.
  Staged staged{path, "", "", -1};
  int fd = -1;
  while (fd < 0) {
    staged.temporary = fmt::format("{}.tmp{}.{}", path, ::getpid(), g_temporary_counter++);
    staged.slot = claimSlot(staged.temporary);  // before the file exists: a signal can remove it
    fd = ::open(staged.temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
      const int error = errno;
      releaseSlot(staged.slot);
      if (error != EEXIST) throw ExportError(writeFailure(path, error));
    }
  }
  // The data must be on disk before the rename makes it the file, or a crash
  // could leave an empty file under the final name.
  FileWriter writer(fd);
  try {
    produce([&](std::string_view piece) {
      writer.append(piece);
      if (progress_) progress_(static_cast<int64_t>(piece.size()));
    });
  } catch (...) {
    ::close(fd);
    ::unlink(staged.temporary.c_str());
    releaseSlot(staged.slot);
    throw;
  }
  if (const int error = writer.finish(); error != 0) {
    ::unlink(staged.temporary.c_str());
    releaseSlot(staged.slot);
    throw ExportError(writeFailure(path, error));
  }
  staged_.push_back(std::move(staged));
}

void OutputFiles::setProgressCallback(std::function<void(int64_t bytes)> callback) {
  progress_ = std::move(callback);
}

void OutputFiles::adopt(OutputFiles& other) {
  for (auto& staged : other.staged_) staged_.push_back(std::move(staged));
  other.staged_.clear();
}

std::vector<std::string> OutputFiles::commit() {
  // Devices and FIFOs first: writing one may wait (a FIFO for its reader), and
  // a signal meanwhile must still stop the export and remove the temporaries.
  std::set<std::string> directories;
  for (const Staged& staged : staged_) {
    if (staged.temporary.empty())
      writeInPlace(staged.final_path, staged.bytes);
    else
      directories.insert(directoryOf(staged.final_path));
  }
  IoTimer timer;
  DirectoryLocks locks(directories);
  SignalsDeferred signals_deferred;
  std::vector<std::string> written;
  for (Staged& staged : staged_) {
    if (!staged.temporary.empty() &&
        ::rename(staged.temporary.c_str(), staged.final_path.c_str()) != 0)
      throw ExportError(fmt::format("cannot move '{}' to '{}': {}", staged.temporary,
                                    staged.final_path, std::strerror(errno)));
    releaseSlot(staged.slot);
    staged.slot = -1;
    staged.temporary.clear();
    written.push_back(staged.final_path);
  }
  staged_.clear();
  return written;
}

void OutputFiles::discard() {
  for (const Staged& staged : staged_) {
    if (!staged.temporary.empty()) ::unlink(staged.temporary.c_str());
    releaseSlot(staged.slot);
  }
  staged_.clear();
}

std::string siblingPath(const std::string& onnx_path, const std::string& suffix) {
  fs::path path(onnx_path);
  return (path.parent_path() / (path.stem().string() + suffix)).string();
}

}  // namespace mexport
