// Runs a strategy in a child process (`export.isolation: process`), so that a
// plugin that crashes or hangs costs one failed attempt instead of the export.
#pragma once

#include "mexport/strategy.h"

namespace mexport {

// Forks; the child tags the model and sends the tags back through a pipe. The
// child shares the parent's memory image, so it sees the same prepared graph;
// nodes travel as their index in a depth-first walk of it. Throws
// StrategyError when the strategy fails, is killed by a signal, exits without
// an answer or runs past timeout_seconds (then it is killed).
NodeTags tagInChildProcess(const Strategy& strategy, const PreparedModel& model,
                           double timeout_seconds);

}  // namespace mexport
