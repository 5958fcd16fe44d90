#include "isolated_strategy.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <torch/csrc/jit/ir/ir.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace mexport {
namespace {

using Clock = std::chrono::steady_clock;

// The reply starts with one of these, then the tags or the error message.
constexpr char kTagsReply = 'T';
constexpr char kErrorReply = 'E';

struct TagRecord {
  int64_t node;  // index in nodesDepthFirst()
  int32_t module;
  int32_t provenance;
};

void appendDepthFirst(const torch::jit::Block* block, std::vector<const torch::jit::Node*>& out) {
  for (const torch::jit::Node* node : block->nodes()) {
    out.push_back(node);
    for (const torch::jit::Block* sub : node->blocks()) appendDepthFirst(sub, out);
  }
}

// Every node of the graph, sub-blocks included, in an order both processes compute alike.
std::vector<const torch::jit::Node*> nodesDepthFirst(const torch::jit::Graph& graph) {
  std::vector<const torch::jit::Node*> nodes;
  appendDepthFirst(graph.block(), nodes);
  return nodes;
}

std::string encodeTags(const PreparedModel& model, const NodeTags& tags) {
  std::string reply(1, kTagsReply);
  const auto nodes = nodesDepthFirst(*model.graph);
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto it = tags.find(nodes[i]);
    if (it == tags.end()) continue;
    const TagRecord record{int64_t(i), it->second.module, int32_t(it->second.provenance)};
    reply.append(reinterpret_cast<const char*>(&record), sizeof record);
  }
  return reply;
}

NodeTags decodeTags(const PreparedModel& model, const std::string& reply) {
  const auto nodes = nodesDepthFirst(*model.graph);
  if ((reply.size() - 1) % sizeof(TagRecord) != 0)
    throw StrategyError("sent a malformed reply from its isolated process");
  NodeTags tags;
  for (size_t offset = 1; offset < reply.size(); offset += sizeof(TagRecord)) {
    TagRecord record;
    std::memcpy(&record, reply.data() + offset, sizeof record);
    const bool valid = record.node >= 0 && size_t(record.node) < nodes.size() &&
                       record.module >= -1 && record.module < int32_t(model.tree.size()) &&
                       record.provenance >= int32_t(Provenance::kDirect) &&
                       record.provenance <= int32_t(Provenance::kUntagged);
    if (!valid) throw StrategyError("sent a malformed reply from its isolated process");
    tags[nodes[record.node]] = {record.module, Provenance(record.provenance)};
  }
  return tags;
}

bool writeAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += size_t(n);
  }
  return true;
}

[[noreturn]] void runChild(int fd, pid_t parent, const Strategy& strategy,
                           const PreparedModel& model) {
  // Dies with the parent, so a hanging strategy never outlives an interrupted
  // export; the parent's handlers clean up the parent's files, not ours.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);
  for (const int sig : {SIGINT, SIGTERM, SIGHUP}) ::signal(sig, SIG_DFL);
  std::string reply;
  try {
    reply = encodeTags(model, strategy.tag(model));
  } catch (const std::exception& e) {
    reply = std::string(1, kErrorReply) + e.what();
  } catch (...) {
    reply = std::string(1, kErrorReply) + "threw something that is not a std::exception";
  }
  // _exit: the child must not run the parent's atexit handlers or destructors.
  ::_exit(writeAll(fd, reply) ? 0 : 1);
}

// Reads the child's reply until it closes the pipe; false on timeout.
bool readReply(int fd, Clock::time_point deadline, std::string& reply) {
  char buffer[65536];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, int(std::min<int64_t>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) return false;
    if (ready <= 0) continue;
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return true;
    reply.append(buffer, size_t(n));
  }
}

// The child's wait status, or nothing if it is still running at the deadline.
std::optional<int> waitForExit(pid_t pid, Clock::time_point deadline) {
  for (;;) {
    int status = 0;
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) return status;
    if (done < 0 && errno != EINTR) return std::nullopt;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::string describeExit(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* abbrev = ::sigabbrev_np(sig);
    return fmt::format("crashed in its isolated process: killed by signal SIG{} ({})",
                       abbrev ? abbrev : std::to_string(sig), ::strsignal(sig));
  }
  return fmt::format("exited with code {} from its isolated process without sending its tags",
                     WEXITSTATUS(status));
}

}  // namespace

NodeTags tagInChildProcess(const Strategy& strategy, const PreparedModel& model,
                           double timeout_seconds) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw StrategyError(
        fmt::format("cannot create a pipe for the isolated process: {}", std::strerror(errno)));
  // Buffered output would be written twice, once by each process.
  std::cout.flush();
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int error = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw StrategyError(fmt::format("cannot fork the isolated process: {}", std::strerror(error)));
  }
  if (pid == 0) {
    ::close(fds[0]);
    runChild(fds[1], parent, strategy, model);
  }
  ::close(fds[1]);
  // Capped at 30 years: a larger timeout would overflow the clock's range.
  const double capped_seconds = std::min(timeout_seconds, 1e9);
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(capped_seconds));
  std::string reply;
  const bool answered = readReply(fds[0], deadline, reply);
  ::close(fds[0]);
  std::optional<int> status = answered ? waitForExit(pid, deadline) : std::nullopt;
  if (!status) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw StrategyError(fmt::format(
        "timed out after {:g} s (export.strategy_timeout) in its isolated process; killed",
        timeout_seconds));
  }
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0 || reply.empty())
    throw StrategyError(describeExit(*status));
  if (reply[0] == kErrorReply) throw StrategyError(reply.substr(1));
  if (reply[0] != kTagsReply)
    throw StrategyError("sent a malformed reply from its isolated process");
  return decodeTags(model, reply);
}

}  // namespace mexport
