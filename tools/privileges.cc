#include "tools/privileges.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace natd {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::PermissionDeniedError(absl::StrCat(what, ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<Credentials> ResolveCredentials(const std::string& user, const std::string& group) {
  Credentials c;
  if (const passwd* pw = getpwnam(user.c_str())) {
    c.uid = pw->pw_uid;
    c.gid = pw->pw_gid;
  } else if (uint32_t n; absl::SimpleAtoi(user, &n)) {
    c.uid = c.gid = n;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--user: no user '", user, "'"));
  }
  if (!group.empty()) {
    if (const struct group* gr = getgrnam(group.c_str())) {
      c.gid = gr->gr_gid;
    } else if (uint32_t n; absl::SimpleAtoi(group, &n)) {
      c.gid = n;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--group: no group '", group, "'"));
    }
  }
  if (c.uid == 0) return absl::InvalidArgumentError("--user: dropping to root keeps every privilege");
  return c;
}

absl::Status DropPrivileges(const Credentials& to) {
  // Empty the bounding set while CAP_SETPCAP is still held, so not even an
  // exec could bring a capability back.
  for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; ++cap) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) return Errno(absl::StrCat("PR_CAPBSET_DROP ", cap));
  }
  if (setgroups(0, nullptr) != 0) return Errno("setgroups");
  if (setresgid(to.gid, to.gid, to.gid) != 0) return Errno(absl::StrCat("setresgid ", to.gid));
  // Changing every uid away from 0 clears the permitted, effective and
  // ambient capability sets (capabilities(7)); KEEPCAPS is off by default.
  if (setresuid(to.uid, to.uid, to.uid) != 0) return Errno(absl::StrCat("setresuid ", to.uid));
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Errno("PR_SET_NO_NEW_PRIVS");
  // Check rather than trust: no capability may be left in any set.
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) return Errno("capget");
  for (const auto& d : data) {
    if (d.effective || d.permitted || d.inheritable) {
      return absl::InternalError("capabilities remain after dropping to an unprivileged user");
    }
  }
  return absl::OkStatus();
}

}  // namespace natd
