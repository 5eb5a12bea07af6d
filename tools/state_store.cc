#include "tools/state_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "nat/state_file.h"

namespace natd {
namespace {

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::Status(absl::ErrnoToStatusCode(errno), absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open", path);
  std::string out;
  char buf[1 << 16];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status s = Errno("cannot read", path);
      close(fd);
      return s;
    }
    if (n == 0) break;
    out.append(buf, size_t(n));
  }
  close(fd);
  return out;
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view bytes) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot create", tmp);
  auto fail = [&](const std::string& what) {
    absl::Status s = Errno(what, tmp);
    close(fd);
    unlink(tmp.c_str());
    return s;
  };
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("cannot write");
    done += size_t(n);
  }
  if (fsync(fd) != 0) return fail("cannot sync");
  if (close(fd) != 0) {
    absl::Status s = Errno("cannot close", tmp);
    unlink(tmp.c_str());
    return s;
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status s = Errno(absl::StrCat("cannot rename ", tmp, " to"), path);
    unlink(tmp.c_str());
    return s;
  }
  // The rename is durable once the directory is on disk too.
  const std::string dir = DirectoryOf(path);
  const int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Errno("cannot open the directory", dir);
  const bool synced = fsync(dfd) == 0;
  absl::Status s = synced ? absl::OkStatus() : Errno("cannot sync the directory", dir);
  close(dfd);
  return s;
}

std::string LoadStateFile(Engine& engine, const std::string& path, int64_t now_ms, int64_t unix_ms) {
  absl::StatusOr<std::string> bytes = ReadWholeFile(path);
  if (!bytes.ok() && absl::IsNotFound(bytes.status())) {
    return absl::StrCat("natd: state: no ", path, " yet; starting empty");
  }
  if (!bytes.ok())
    return absl::StrCat("natd: state: ", path, " refused: ", bytes.status().message(), "; starting empty");
  absl::StatusOr<RestoreCounts> counts = RestoreState(engine, *bytes, now_ms, unix_ms);
  if (!counts.ok()) {
    return absl::StrCat("natd: state: ", path, " refused: ", counts.status().message(), "; starting empty");
  }
  std::string line = absl::StrCat("natd: state: restored ", counts->sessions, " sessions (", counts->mappings,
                                  " mappings) from ", path);
  if (counts->expired) absl::StrAppend(&line, "; ", counts->expired, " expired while natd was down");
  return line;
}

std::string SaveStateFile(Engine& engine, const std::string& path, int64_t now_ms, int64_t unix_ms, bool* ok) {
  size_t sessions = 0;
  const std::string bytes = EncodeState(engine, now_ms, unix_ms, &sessions);
  if (absl::Status s = WriteFileAtomically(path, bytes); !s.ok()) {
    *ok = false;
    return absl::StrCat("natd: state: NOT saved: ", s.message());
  }
  *ok = true;
  return absl::StrCat("natd: state: saved ", sessions, " sessions to ", path, " (", bytes.size(), " bytes)");
}

absl::Status CheckStateFileWritable(const std::string& path) {
  if (path.empty() || path.back() == '/')
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is no file name"));
  const std::string dir = DirectoryOf(path);
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return Errno("cannot use the directory", dir);
  if (!S_ISDIR(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat(dir, " is not a directory"));
  if (access(dir.c_str(), W_OK) != 0) return Errno("cannot write in", dir);
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is a directory"));
  }
  return absl::OkStatus();
}

}  // namespace natd
