#include "tools/event_log.h"

#include <time.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nat/packet_view.h"

namespace natd {
namespace {

int64_t WallMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string Timestamp(int64_t ms) {
  time_t s = time_t(ms / 1000);
  tm t;
  gmtime_r(&s, &t);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  return absl::StrFormat("%s.%03dZ", buf, int(ms % 1000));
}

const char* ProtoName(uint8_t p) {
  switch (p) {
    case kProtoTcp:
      return "tcp";
    case kProtoUdp:
      return "udp";
    case kProtoIcmp:
      return "icmp";
    case kProtoIcmp6:
      return "icmp6";
  }
  return "?";
}

std::string Endpoint(const IpAddress& a, uint16_t port) {
  return a.family == 6 ? absl::StrCat("[", ToString(a), "]:", port) : absl::StrCat(ToString(a), ":", port);
}

}  // namespace

EventLog::EventLog(FILE* out, std::string path, uint32_t invalid_per_second)
    : out_(out), path_(std::move(path)), invalid_per_second_(invalid_per_second), queue_(8192) {
  thread_ = std::thread([this] { Run(); });
}

EventLog::~EventLog() { Stop(); }

void EventLog::Push(Record&& r) {
  if (!queue_.try_enqueue(std::move(r))) lost_.fetch_add(1, std::memory_order_relaxed);
}

bool EventLog::RateLimit() {
  const int64_t second = WallMs() / 1000;
  int64_t seen = window_second_.load(std::memory_order_relaxed);
  if (seen != second && window_second_.compare_exchange_strong(seen, second)) {
    window_count_.store(0, std::memory_order_relaxed);
  }
  if (window_count_.fetch_add(1, std::memory_order_relaxed) < invalid_per_second_.load(std::memory_order_relaxed)) {
    return true;
  }
  suppressed_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void EventLog::MappingInserted(const MappingEvent& e) { Push(Record{Kind::kInserted, 0, WallMs(), e, 0, {}}); }

void EventLog::MappingRemoved(const MappingEvent& e, RemoveReason why) {
  Push(Record{Kind::kRemoved, uint8_t(why), WallMs(), e, 0, {}});
}

void EventLog::MappingRefused(const MappingEvent& e, DropReason why) {
  if (RateLimit()) Push(Record{Kind::kRefused, uint8_t(why), WallMs(), e, 0, {}});
}

void EventLog::PacketDropped(DropReason why, const uint8_t* data, size_t len) {
  // Policy drops (filtering, no mapping) are normal traffic: counters only.
  switch (why) {
    case DropReason::kNoMapping:
    case DropReason::kFiltered:
    case DropReason::kTcpNoSession:
    case DropReason::kIcmpErrorNoSession:
    case DropReason::kNoPort:
    case DropReason::kTableFull:
    case DropReason::kHostQuota:
    case DropReason::kLinkLocalOrMulticast:
      return;
    default:
      break;
  }
  if (!RateLimit()) return;
  Record r{Kind::kDropped, uint8_t(why), WallMs(), {}, uint16_t(len > 0xffff ? 0xffff : len), {}};
  std::memcpy(r.head, data, len < sizeof r.head ? len : sizeof r.head);
  Push(std::move(r));
}

void EventLog::Line(std::string text) {
  {
    std::lock_guard<std::mutex> lock(lines_mu_);
    lines_.push_back(std::move(text));
  }
  wake_.notify_one();
}

void EventLog::Write(const Record& r) {
  const MappingEvent& e = r.event;
  std::string line = Timestamp(r.wall_ms);
  switch (r.kind) {
    case Kind::kInserted:
      absl::StrAppend(&line, " mapping+ ", ProtoName(e.proto), " ", Endpoint(e.inside, e.inside_port), " ext ",
                      e.external_port, " (first peer ", Endpoint(e.remote, e.remote_port), ")");
      break;
    case Kind::kRemoved:
      absl::StrAppend(&line, " mapping- ", ProtoName(e.proto), " ", Endpoint(e.inside, e.inside_port), " ext ",
                      e.external_port, " ", std::string(RemoveReasonName(RemoveReason(r.reason))));
      break;
    case Kind::kRefused:
      absl::StrAppend(&line, " refused ", ProtoName(e.proto), " ", Endpoint(e.inside, e.inside_port), " -> ",
                      Endpoint(e.remote, e.remote_port), ": ", std::string(DropReasonName(DropReason(r.reason))));
      break;
    case Kind::kDropped: {
      absl::StrAppend(&line, " drop ", std::string(DropReasonName(DropReason(r.reason))), " len ", r.len, " head");
      const size_t n = r.len < sizeof r.head ? r.len : sizeof r.head;
      for (size_t i = 0; i < n; ++i) absl::StrAppendFormat(&line, "%s%02x", i % 4 ? "" : " ", r.head[i]);
      break;
    }
  }
  line += '\n';
  fputs(line.c_str(), out_);
}

void EventLog::Run() {
  Record batch[64];
  while (true) {
    bool stopping = stop_.load();
    size_t n;
    while ((n = queue_.try_dequeue_bulk(batch, 64)) > 0) {
      for (size_t i = 0; i < n; ++i) Write(batch[i]);
    }
    std::vector<std::string> lines;
    {
      std::lock_guard<std::mutex> lock(lines_mu_);
      lines.swap(lines_);
    }
    for (const auto& l : lines) fputs(l.c_str(), out_);
    if (uint64_t s = suppressed_.exchange(0); s > 0) {
      fprintf(out_, "%s %llu packet-drop lines suppressed by the rate limit\n", Timestamp(WallMs()).c_str(),
              static_cast<unsigned long long>(s));
    }
    fflush(out_);
    if (reopen_.exchange(false) && path_ != "-") {
      // The old file may have been renamed by a log rotator: write on in a
      // new one at the same path; keep the old if that fails.
      if (FILE* f = fopen(path_.c_str(), "a")) {
        fclose(out_);
        out_ = f;
        fprintf(out_, "%s log reopened (SIGHUP)\n", Timestamp(WallMs()).c_str());
      } else {
        fprintf(out_, "%s cannot reopen %s: %s\n", Timestamp(WallMs()).c_str(), path_.c_str(), strerror(errno));
      }
      fflush(out_);
    }
    if (stopping) break;
    std::unique_lock<std::mutex> lock(wake_mu_);
    wake_.wait_for(lock, std::chrono::milliseconds(100));
  }
}

void EventLog::Stop() {
  if (stop_.exchange(true)) return;
  wake_.notify_one();
  thread_.join();
}

}  // namespace natd
