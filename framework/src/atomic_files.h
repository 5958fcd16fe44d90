// Signal handling for the output files OutputFiles stages (atomic_files.cpp).
#pragma once

namespace mexport {

// Makes SIGINT, SIGTERM and SIGHUP remove the temporaries of unfinished output
// files, print one error line and end the process by the same signal, so that
// a shell or a parent process sees the interruption. A signal the process
// started with ignored (nohup, a background job) stays ignored. main() calls
// it once, first thing.
void installOutputSignalHandlers();

// Seconds this process has spent writing, syncing, closing and renaming the
// files OutputFiles wrote: the I/O alone, without producing the bytes.
double outputIoSeconds();

}  // namespace mexport
