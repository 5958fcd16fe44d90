// Bounds the stages that run user code (the reference run, validation): a
// model may loop forever or take far longer than anyone waits for.
#pragma once

#include <functional>
#include <string>

namespace mexport {

// Prints "mexport: error: <message>" on stderr as the CLI prints every error,
// first erasing a progress line a terminal may show.
void printErrorLine(const std::string& message);

// Runs `work` on a thread of its own and waits for it at most `seconds` (0:
// no limit); an exception it throws is thrown here. When time runs out the
// process ends at once with exit code 1 after printing
// "<stage> did not finish within N s (<setting>); <where()>". A running thread
// cannot be stopped, and unwinding would free what it reads, so only stages
// that have staged no output file may use this.
void runWithDeadline(const std::string& stage, const std::string& setting, double seconds,
                     const std::function<void()>& work, const std::function<std::string()>& where);

}  // namespace mexport
