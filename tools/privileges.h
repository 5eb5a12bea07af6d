// Dropping root after start-up: natd needs CAP_NET_ADMIN only to create its
// TUN queues and set the device up; after that it reads and writes file
// descriptors it already holds. DropPrivileges switches to an unprivileged
// user and group (supplementary groups cleared), which leaves every
// capability behind, empties the bounding set, and forbids regaining any
// (PR_SET_NO_NEW_PRIVS).
#ifndef NATD_TOOLS_PRIVILEGES_H_
#define NATD_TOOLS_PRIVILEGES_H_

#include <string>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace natd {

struct Credentials {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// `user` by name or number; `group` empty means the user's primary group.
// Resolved at start, before anything is opened, so a typo stops natd early.
absl::StatusOr<Credentials> ResolveCredentials(const std::string& user, const std::string& group);
absl::Status DropPrivileges(const Credentials& to);

}  // namespace natd

#endif  // NATD_TOOLS_PRIVILEGES_H_
