#include "tools/live_config.h"

#include <stdlib.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

// Stand-ins for natd's flags (only flags defined in this file take part).
ABSL_FLAG(absl::Duration, lc_icmp_timeout, absl::Seconds(60), "live");
ABSL_FLAG(absl::Duration, lc_udp_timeout, absl::Minutes(5), "live");
ABSL_FLAG(bool, lc_refresh, false, "live");
ABSL_FLAG(uint32_t, lc_workers, 1, "restart-only");
ABSL_FLAG(std::string, lc_device, "natd0", "restart-only");

namespace natd {

void PrintTo(const FlagChange& c, std::ostream* os) {
  *os << c.name << " " << c.from << " -> " << c.to << (c.live ? " (live)" : " (restart)");
}

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::flat_hash_set<std::string> kLive = {"lc_icmp_timeout", "lc_udp_timeout", "lc_refresh"};

// The rules a start would apply, as natd's SettingsFromFlags does.
absl::Status Validate() {
  auto t = TimeoutsFrom(absl::Hours(2), absl::Minutes(4), absl::GetFlag(FLAGS_lc_udp_timeout),
                        absl::GetFlag(FLAGS_lc_icmp_timeout));
  if (!t.ok()) return t.status();
  const uint32_t w = absl::GetFlag(FLAGS_lc_workers);
  if (w < 1 || w > 254) return absl::InvalidArgumentError("--lc_workers: must be 1..254");
  return absl::OkStatus();
}

class LiveConfigTest : public ::testing::Test {
 protected:
  // Writes a flagfile; returns its path.
  std::string File(const std::string& name, const std::string& text) {
    const std::string path = absl::StrCat(::testing::TempDir(), "/", name);
    std::ofstream(path) << text;
    return path;
  }
  absl::StatusOr<std::vector<FlagChange>> Plan(const std::vector<std::string>& args) {
    return PlanReload(args, __FILE__, kLive, Validate);
  }
  // The flags as they were when the test started, and at its end.
  void ExpectUnchanged() {
    EXPECT_EQ(absl::GetFlag(FLAGS_lc_icmp_timeout), absl::Seconds(60));
    EXPECT_EQ(absl::GetFlag(FLAGS_lc_udp_timeout), absl::Minutes(5));
    EXPECT_FALSE(absl::GetFlag(FLAGS_lc_refresh));
    EXPECT_EQ(absl::GetFlag(FLAGS_lc_workers), 1u);
    EXPECT_EQ(absl::GetFlag(FLAGS_lc_device), "natd0");
  }
  absl::FlagSaver saver_;
};

TEST_F(LiveConfigTest, GoodFileLiveChanges) {
  const std::string f = File("good.flags",
                             "# natd's live settings\n"
                             "\n"
                             "   --lc_icmp_timeout=2s\n"
                             "--lc_udp_timeout=3m\n"
                             "-lc_refresh\n"
                             "--lc_device=natd0\n");
  auto plan = Plan({"--flagfile=" + f});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(*plan, ElementsAre(FlagChange{"lc_icmp_timeout", "1m", "2s", true},
                                 FlagChange{"lc_refresh", "false", "true", true},
                                 FlagChange{"lc_udp_timeout", "5m", "3m", true}));
  EXPECT_EQ(DescribeLive(*plan), "lc_icmp_timeout 1m -> 2s, lc_refresh false -> true, lc_udp_timeout 5m -> 3m");
  ExpectUnchanged();  // planning changes nothing
  CommitLive(*plan);
  EXPECT_EQ(absl::GetFlag(FLAGS_lc_icmp_timeout), absl::Seconds(2));
  EXPECT_EQ(absl::GetFlag(FLAGS_lc_udp_timeout), absl::Minutes(3));
  EXPECT_TRUE(absl::GetFlag(FLAGS_lc_refresh));
  // Read again: nothing more to change.
  plan = Plan({"--flagfile=" + f});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(*plan, ElementsAre());
}

TEST_F(LiveConfigTest, SameValueOtherSpellingIsNoChange) {
  auto plan = Plan({"--flagfile=" + File("same.flags", "--lc_icmp_timeout=60s\n--lc_udp_timeout=300s\n")});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(*plan, ElementsAre());
}

TEST_F(LiveConfigTest, RestartOnlyChangesReportedNotCommitted) {
  auto plan =
      Plan({"--flagfile=" + File("restart.flags", "--lc_workers=4\n--lc_device=natd9\n--lc_icmp_timeout=5s\n")});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(*plan, ElementsAre(FlagChange{"lc_device", "natd0", "natd9", false},
                                 FlagChange{"lc_icmp_timeout", "1m", "5s", true},
                                 FlagChange{"lc_workers", "1", "4", false}));
  EXPECT_EQ(DescribeLive(*plan), "lc_icmp_timeout 1m -> 5s");
  CommitLive(*plan);
  EXPECT_EQ(absl::GetFlag(FLAGS_lc_icmp_timeout), absl::Seconds(5));
  EXPECT_EQ(absl::GetFlag(FLAGS_lc_workers), 1u);
  EXPECT_EQ(absl::GetFlag(FLAGS_lc_device), "natd0");
}

TEST_F(LiveConfigTest, LineRemovedMeansDefault) {
  // Started with the file saying 2s; the line is gone now.
  absl::SetFlag(&FLAGS_lc_icmp_timeout, absl::Seconds(2));
  auto plan = Plan({"--flagfile=" + File("removed.flags", "# nothing\n")});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(*plan, ElementsAre(FlagChange{"lc_icmp_timeout", "2s", "1m", true}));
}

TEST_F(LiveConfigTest, CommandLineOrderAsAtStart) {
  const std::string f = File("order.flags", "--lc_icmp_timeout=5s\n");
  // After the flagfile on the command line: the command line wins.
  absl::SetFlag(&FLAGS_lc_icmp_timeout, absl::Seconds(30));
  auto plan = Plan({"--flagfile=" + f, "--lc_icmp_timeout=30s"});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(*plan, ElementsAre());
  // Before it: the file wins. The `--name value` form, as at start.
  plan = Plan({"--lc_icmp_timeout", "30s", "--flagfile", f, "--lc_workers", "1"});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(*plan, ElementsAre(FlagChange{"lc_icmp_timeout", "30s", "5s", true}));
}

TEST_F(LiveConfigTest, NestedAndListedFlagfiles) {
  const std::string inner = File("inner.flags", "--lc_udp_timeout=10m\n");
  const std::string outer = File("outer.flags", absl::StrCat("--flagfile=", inner, "\n--nolc_refresh\n"));
  const std::string other = File("other.flags", "--lc_refresh=yes\n");
  auto plan = Plan({absl::StrCat("--flagfile=", outer, ",", other)});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(*plan, ElementsAre(FlagChange{"lc_refresh", "false", "true", true},
                                 FlagChange{"lc_udp_timeout", "5m", "10m", true}));
}

TEST_F(LiveConfigTest, FlagfileLoopRejected) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/loop.flags");
  File("loop.flags", absl::StrCat("--flagfile=", path, "\n"));
  auto plan = Plan({"--flagfile=" + path});
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("nested deeper"));
  ExpectUnchanged();
}

TEST_F(LiveConfigTest, EnvironmentAndUndefok) {
  setenv("FLAGS_lc_workers", "3", 1);
  auto plan = Plan({"--fromenv=lc_workers", "--tryfromenv=lc_device"});
  unsetenv("FLAGS_lc_workers");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(*plan, ElementsAre(FlagChange{"lc_workers", "1", "3", false}));
  plan = Plan({"--fromenv=lc_workers"});
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(), HasSubstr("FLAGS_lc_workers not found"));
  // An unknown flag named by --undefok is skipped, as at start.
  plan = Plan({"--undefok=lc_gone", "--flagfile=" + File("undefok.flags", "--lc_gone=1\n--nolc_gone\n")});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(*plan, ElementsAre());
}

struct BadCase {
  const char* what;
  const char* file;
  const char* message;  // a part of the error
};

TEST_F(LiveConfigTest, EachKindOfBadLineRejectsTheWholeFile) {
  const BadCase cases[] = {
      {"not a flag", "--lc_icmp_timeout=2s\nlc_udp_timeout=3m\n",
       "bad.flags:2: not a flag (--name=value): 'lc_udp_timeout=3m'"},
      {"positional", "--lc_icmp_timeout=2s\n--\n", "bad.flags:2: a flagfile can't hold '--'"},
      {"unknown flag", "--lc_icmp_timeout=2s\n\n--lc_no_such=1\n", "bad.flags:3: unknown flag --lc_no_such"},
      {"unknown no-flag", "--nolc_nothing\n", "bad.flags:1: unknown flag --nolc_nothing"},
      {"unparseable duration", "--lc_icmp_timeout=2x\n",
       "bad.flags:1: Illegal value '2x' specified for flag 'lc_icmp_timeout'"},
      {"unparseable number", "--lc_workers=-1\n", "bad.flags:1: Illegal value '-1' specified for flag 'lc_workers'"},
      {"unparseable bool", "--lc_refresh=maybe\n", "bad.flags:1: Illegal value 'maybe'"},
      {"empty bool", "--lc_refresh=\n", "bad.flags:1: --lc_refresh=: missing the value"},
      {"no form with value", "--nolc_refresh=true\n", "bad.flags:1: --nolc_refresh takes no value"},
      {"no form of non-bool", "--nolc_workers\n", "bad.flags:1: --nolc_workers: only a boolean flag"},
      {"missing value", "--lc_icmp_timeout=2s\n--lc_workers\n", "bad.flags:2: --lc_workers: missing the value"},
      {"udp under 2m", "--lc_icmp_timeout=2s\n--lc_udp_timeout=10s\n", "--udp_timeout: must be at least 2m"},
      {"zero timeout", "--lc_icmp_timeout=0s\n", "--icmp_timeout: must be positive"},
      {"infinite timeout", "--lc_icmp_timeout=inf\n", "--icmp_timeout: at most 8760h"},
      {"out of range", "--lc_icmp_timeout=2s\n--lc_workers=300\n", "--lc_workers: must be 1..254"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.what);
    auto plan = Plan({"--flagfile=" + File("bad.flags", c.file)});
    ASSERT_FALSE(plan.ok());
    EXPECT_THAT(plan.status().message(), HasSubstr(c.message));
    ExpectUnchanged();
  }
}

TEST_F(LiveConfigTest, UnreadableFile) {
  auto plan = Plan({"--lc_workers=1", "--flagfile=/nonexistent/natd.flags"});
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan.status().message(),
              HasSubstr("the command line: cannot open flagfile '/nonexistent/natd.flags'"));
  ExpectUnchanged();
}

TEST_F(LiveConfigTest, ExpandArgsKeepsOrderAndOrigins) {
  const std::string f = File("expand.flags", "--lc_workers=2\n# x\n--lc_refresh\n");
  auto args = ExpandArgs({"--lc_device", "tun7", "--flagfile=" + f, "--lc_workers=3"});
  ASSERT_TRUE(args.ok()) << args.status();
  ASSERT_EQ(args->size(), 4u);
  EXPECT_EQ((*args)[0].name, "lc_device");
  EXPECT_EQ((*args)[0].value, "tun7");
  EXPECT_EQ((*args)[0].origin, "the command line");
  EXPECT_EQ((*args)[1].origin, f + ":1");
  EXPECT_EQ((*args)[2].name, "lc_refresh");
  EXPECT_EQ((*args)[2].value, "true");
  EXPECT_EQ((*args)[2].origin, f + ":3");
  EXPECT_EQ((*args)[3].value, "3");
  EXPECT_FALSE(ExpandArgs({"positional"}).ok());
}

TEST(TimeoutsFromTest, Rules) {
  auto t = TimeoutsFrom(absl::Minutes(124), absl::Minutes(4), absl::Minutes(2), absl::Seconds(2));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->tcp_established_ms, 124 * 60 * 1000);
  EXPECT_EQ(t->tcp_transitory_ms, 4 * 60 * 1000);
  EXPECT_EQ(t->udp_ms, 2 * 60 * 1000);
  EXPECT_EQ(t->icmp_ms, 2000);
  EXPECT_THAT(TimeoutsFrom(absl::Minutes(3), absl::Minutes(4), absl::Minutes(5), absl::Seconds(60)).status().message(),
              HasSubstr("--tcp_transitory_timeout: longer than --tcp_established_timeout"));
  EXPECT_THAT(TimeoutsFrom(absl::Minutes(124), absl::Minutes(4), absl::Seconds(119), absl::Seconds(60))
                  .status()
                  .message(),
              HasSubstr("--udp_timeout: must be at least 2m"));
  EXPECT_THAT(TimeoutsFrom(-absl::Minutes(1), absl::Minutes(4), absl::Minutes(5), absl::Seconds(60)).status().message(),
              HasSubstr("--tcp_established_timeout: must be positive"));
  EXPECT_FALSE(DurationMs("x", absl::InfiniteDuration()).ok());
  EXPECT_EQ(*DurationMs("x", absl::Hours(8760)), int64_t(8760) * 3600 * 1000);
}

}  // namespace
}  // namespace natd
