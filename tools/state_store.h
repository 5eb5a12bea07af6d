// The state file on disk (--state_file): natd's side of nat/state_file.h,
// which turns tables into bytes and back; this part reads and writes them.
//
// Writing must never leave a half-written file where the last good one was:
// natd may be killed while saving, or the machine may lose power. So the
// bytes go to a temporary file in the same directory (a rename is atomic only
// within one file system), which is flushed to disk (fsync) and renamed over
// the old one; the directory is synced last so that the rename itself is
// durable. A reader sees the old file or the new one, never a mix.
//
// Loading is forgiving by design: a missing file is a first start, and a
// file that cannot be read, is corrupt or was written for another
// configuration is refused with its reason and natd starts with empty
// tables; none of them stops natd.
#ifndef NATD_TOOLS_STATE_STORE_H_
#define NATD_TOOLS_STATE_STORE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nat/engine.h"

namespace natd {

// The whole file; NotFound when there is none.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

// Replaces `path` with `bytes` atomically and durably (see above).
absl::Status WriteFileAtomically(const std::string& path, std::string_view bytes);

// Restores the engine's tables from the state file at `path`, at start,
// before any packet. Returns the line to log: restored, nothing to restore,
// or refused and why.
std::string LoadStateFile(Engine& engine, const std::string& path, int64_t now_ms, int64_t unix_ms);

// Saves every live session to `path`, once the dataplane has stopped.
// Returns the line to log; `ok` says whether the file was written.
std::string SaveStateFile(Engine& engine, const std::string& path, int64_t now_ms, int64_t unix_ms, bool* ok);

// Whether natd can write the state file there: its directory exists and is
// writable (checked at start, so a typo does not surface only at exit).
absl::Status CheckStateFileWritable(const std::string& path);

}  // namespace natd

#endif  // NATD_TOOLS_STATE_STORE_H_
