// bench/echo — a load generator for TCP echo servers, written with fibers too: C connections,
// each a fiber doing request/response round trips of a fixed size (write_all, then read_full of
// the echo) in a closed loop. Reports requests per second and the latency of a round trip
// (p50, p90, p99, p99.9, max), from per-connection histograms merged at the end.
//
//   build/bench/echo --target 127.0.0.1:7000 --connections 1000 --duration 5
//   build/bench/echo --serve --connections 100        # the echo server in this same process
//
// Options:
//   --target HOST:PORT   the server to drive (numeric address; loopback in the benchmarks)
//   --serve              start librt-csp's echo server in-process (examples/net/echo_server's
//                        loop) and drive it; generator and server then share the workers
//   --connections C      connections, one fiber each (default 100)
//   --size B             bytes per request, echoed back (default 64)
//   --duration S         measured seconds (default 5), after --warmup S (default 1) in which
//                        every connection already runs but nothing is recorded
//   --requests R         instead of a duration: R round trips per connection, all recorded
//   --workers W          worker threads (default: RT_MAXPROCS, else one per core)
//   --dial-concurrency K at most K dials in flight (default 256): 10,000 simultaneous SYNs would
//                        overflow the listen backlog and cost 1 s retransmissions
//   --label NAME         names the server in the output ("server" field)
// Everything is bounded: dials time out after 10 s, and every read/write has a deadline of
// the end of the run + 10 s, so a stalled server ends the run with errors instead of hanging.
//
// Output: one JSON line (bench/compare.py reads it), e.g.
//   {"workload":"echo","runtime":"librt-csp","server":"go","n":1000,"connections":1000,
//    "requests":812345,"rps":162469.0,"p50_ns":...,"p99_ns":...,"errors":0,...}
// `requests` counts the round trips completed inside the measured window (rps = requests / the
// window); the percentiles cover every round trip started in it (latency_samples).
// `connections` is how many were established: fewer than n means the rest failed to connect
// (dial_errors, first_error say why). Exit status 1 when an echo came back wrong, 2 on usage.
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include "bench_common.hpp"
#include "rt/csp.hpp"
#include "rt/net.hpp"

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

// A log-linear latency histogram: exact below 128 ns, then 64 buckets per power of two (1.6%
// resolution), up to 2^36 ns (68 s); 2,048 counters, 8 KiB: small enough for each connection's
// fiber to keep its own on its stack, so recording is a plain increment.
constexpr int kSub = 64;
constexpr int kBuckets = 2048;

int bucket_of(std::int64_t ns) {
  auto v = static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0));
  if (v < 2 * kSub) return static_cast<int>(v);
  int h = 63 - __builtin_clzll(v);  // >= 7
  int shift = h - 6;
  int idx = shift * kSub + static_cast<int>(v >> shift);
  return std::min(idx, kBuckets - 1);
}

// The middle of a bucket's range, in ns.
double value_of(int idx) {
  if (idx < 2 * kSub) return idx;
  int shift = idx / kSub - 1;
  double lo = static_cast<double>(static_cast<std::uint64_t>(idx % kSub + kSub) << shift);
  return lo + static_cast<double>(std::uint64_t{1} << shift) / 2;
}

// The merged histogram. Fibers add their local counts with relaxed fetch_add at the end of
// their run; main reads them after wait_group::wait(), which orders every done() before it
// (the wait group's own synchronisation), so relaxed is enough: no other ordering is needed.
std::array<std::atomic<std::uint64_t>, kBuckets> g_hist{};

struct config {
  std::string target;
  bool serve = false;
  int connections = 100;
  std::size_t size = 64;
  double duration_s = 5;
  double warmup_s = 1;
  std::uint64_t requests = 0;  // per connection; 0: by duration
  unsigned workers = 0;
  int dial_concurrency = 256;
  std::string label;
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "echo: %s\nusage: echo (--target HOST:PORT | --serve) [--connections C] "
               "[--size B] [--duration S] [--warmup S] [--requests R] [--workers W] "
               "[--dial-concurrency K] [--label NAME]\n",
               msg);
  std::exit(2);
}

config parse(int argc, char** argv) {
  config c;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--target") {
      c.target = value();
    } else if (a == "--serve") {
      c.serve = true;
    } else if (a == "--connections") {
      c.connections = std::atoi(value());
    } else if (a == "--size") {
      c.size = std::strtoull(value(), nullptr, 10);
    } else if (a == "--duration") {
      c.duration_s = std::atof(value());
    } else if (a == "--warmup") {
      c.warmup_s = std::atof(value());
    } else if (a == "--requests") {
      c.requests = std::strtoull(value(), nullptr, 10);
    } else if (a == "--workers") {
      c.workers = static_cast<unsigned>(std::atoi(value()));
    } else if (a == "--dial-concurrency") {
      c.dial_concurrency = std::atoi(value());
    } else if (a == "--label") {
      c.label = value();
    } else {
      usage(("unknown argument " + a).c_str());
    }
  }
  if (c.serve == !c.target.empty()) usage("give exactly one of --target and --serve");
  if (c.connections < 1 || c.size < 1 || c.size > (1u << 20) || c.dial_concurrency < 1)
    usage("--connections, --size (1 B to 1 MiB) and --dial-concurrency must be positive");
  if (c.requests == 0 && !(c.duration_s > 0 && c.duration_s <= 600))
    usage("--duration must be in (0, 600] seconds");
  if (c.warmup_s < 0 || c.warmup_s > 60) usage("--warmup must be in [0, 60] seconds");
  if (c.label.empty()) c.label = c.serve ? "librt-csp (in-process)" : c.target;
  return c;
}

// The in-process server: examples/net/echo_server.cpp's loop.
void echo_conn(rt::net::conn c) {
  char buf[4096];
  std::error_code ec;
  for (;;) {
    std::size_t n = c.read(buf, sizeof buf, ec);
    if (ec || n == 0) return;
    c.write_all(buf, n, ec);
    if (ec) return;
  }
}

void accept_loop(rt::net::listener& ln) {
  for (;;) {
    std::error_code ec;
    rt::net::conn c = ln.accept(ec);
    if (ec == rt::net::net_errc::closed) return;
    if (ec) {  // EMFILE and the like: keep serving the others
      rt::sleep_for(5ms);
      continue;
    }
    rt::go(echo_conn, std::move(c));
  }
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) continue;
    out += ch;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const config cfg = parse(argc, argv);

  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  const auto need = static_cast<rlim_t>(cfg.connections) * (cfg.serve ? 2 : 1) + 32;
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < need)
    std::fprintf(stderr,
                 "echo: RLIMIT_NOFILE is %llu (hard limit): %d connections%s need about %llu "
                 "descriptors; expect dial errors\n",
                 static_cast<unsigned long long>(lim.rlim_cur), cfg.connections,
                 cfg.serve ? " with the server in-process" : "",
                 static_cast<unsigned long long>(need));

  rt::options opts;
  opts.workers = cfg.workers;
  unsigned workers = 0;
  std::atomic<std::uint64_t> total_completed{0}, errors{0}, dial_errors{0}, mismatches{0};
  std::atomic<int> connected{0};
  std::mutex first_error_mu;  // only on error paths
  std::string first_error;
  std::chrono::nanoseconds wall{};
  std::string target = cfg.target;

  auto note_error = [&](const std::string& what) {
    std::lock_guard lk(first_error_mu);
    if (first_error.empty()) first_error = what;
  };

  rt::run(
      [&] {
        workers = rt::worker_count();
        rt::net::listener ln;
        if (cfg.serve) {
          ln = rt::net::listen("127.0.0.1:0");
          target = ln.local_address().to_string();
          rt::go(accept_loop, std::ref(ln));
        }
        const rt::net::address addr = rt::net::address::parse(target);
        auto dial_slots = rt::make_chan<int>(static_cast<std::size_t>(cfg.dial_concurrency));
        auto start = rt::make_chan<int>();
        rt::wait_group dialed, finished;
        // Filled in by main before `start` is closed; read by the fibers after it (the channel
        // close orders the writes before every receive that sees it closed).
        clock_type::time_point t_record{}, t_end{}, io_deadline{};
        for (int i = 0; i < cfg.connections; ++i) {
          dialed.add(1);
          finished.add(1);
          rt::go([&, i] {
            rt::net::conn c;
            int token = 0;
            dial_slots.send(token);  // take a dial slot
            try {
              c = rt::net::dial(addr, clock_type::now() + 10s);
              connected.fetch_add(1, std::memory_order_relaxed);  // read after wait(): see g_hist
            } catch (const std::system_error& e) {
              dial_errors.fetch_add(1, std::memory_order_relaxed);
              note_error(std::string("dial: ") + e.what());
            }
            dial_slots.try_recv();  // give it back
            dialed.done();
            start.recv();  // closed when every connection is up (or failed)
            if (c) {
              std::array<std::uint32_t, kBuckets> hist{};
              std::vector<char> out(cfg.size), in(cfg.size);
              for (std::size_t k = 0; k < cfg.size; ++k)
                out[k] = static_cast<char>('a' + (i + k) % 26);
              c.set_deadline(io_deadline);
              std::error_code ec;
              std::uint64_t completed = 0;
              for (std::uint64_t r = 0; cfg.requests == 0 || r < cfg.requests; ++r) {
                auto t0 = clock_type::now();
                if (cfg.requests == 0 && t0 >= t_end) break;
                c.write_all(out.data(), out.size(), ec);
                if (!ec) c.read_full(in.data(), in.size(), ec);
                if (ec) {
                  errors.fetch_add(1, std::memory_order_relaxed);
                  note_error("connection " + std::to_string(i) + ": " + ec.message());
                  break;
                }
                auto t1 = clock_type::now();
                if (in != out) {
                  mismatches.fetch_add(1, std::memory_order_relaxed);
                  note_error("connection " + std::to_string(i) + ": echo differs");
                  break;
                }
                // Latency: every request started in the measured window. Throughput: the
                // requests completed in it (one in flight per connection straddles each end).
                if (t0 >= t_record) ++hist[bucket_of((t1 - t0).count())];
                if (t1 >= t_record && t1 < t_end) ++completed;
              }
              total_completed.fetch_add(completed, std::memory_order_relaxed);
              for (int b = 0; b < kBuckets; ++b)
                if (hist[b]) g_hist[b].fetch_add(hist[b], std::memory_order_relaxed);
            }
            finished.done();
          });
        }
        dialed.wait();
        auto now = clock_type::now();
        t_record = cfg.requests ? now
                                : now + std::chrono::duration_cast<clock_type::duration>(
                                            std::chrono::duration<double>(cfg.warmup_s));
        t_end = cfg.requests ? clock_type::time_point::max()
                             : t_record + std::chrono::duration_cast<clock_type::duration>(
                                              std::chrono::duration<double>(cfg.duration_s));
        // Bounded in every mode: a request-count run gets 10 minutes.
        io_deadline = (cfg.requests ? now + 600s : t_end) + 10s;
        start.close();
        finished.wait();
        auto stop = clock_type::now();
        wall = cfg.requests ? stop - t_record : t_end - t_record;
        if (cfg.serve) ln.close();
      },
      opts);

  std::vector<std::uint64_t> counts(kBuckets);
  std::uint64_t n = 0;
  for (int b = 0; b < kBuckets; ++b) n += counts[b] = g_hist[b].load(std::memory_order_relaxed);
  auto pct = [&](double p) -> double {
    if (n == 0) return 0;
    auto rank = static_cast<std::uint64_t>(static_cast<double>(n) * p / 100.0 + 0.999999);
    rank = std::clamp<std::uint64_t>(rank, 1, n);
    std::uint64_t seen = 0;
    for (int b = 0; b < kBuckets; ++b)
      if ((seen += counts[b]) >= rank) return value_of(b);
    return value_of(kBuckets - 1);
  };
  double max_ns = 0;
  for (int b = kBuckets - 1; b >= 0; --b)
    if (counts[b]) {
      max_ns = value_of(b);
      break;
    }
  const double secs = std::chrono::duration<double>(wall).count();
  const std::uint64_t completed = total_completed.load(std::memory_order_relaxed);
  const double rps = secs > 0 ? static_cast<double>(completed) / secs : 0;
  char extra[1024];
  std::snprintf(extra, sizeof extra,
                ",\"server\":\"%s\",\"connections\":%d,\"size\":%zu,\"requests\":%llu,"
                "\"latency_samples\":%llu,\"rps\":%.1f,\"p50_ns\":%.0f,\"p90_ns\":%.0f,\"p99_ns\":%"
                ".0f,\"p999_ns\":%.0f,"
                "\"max_ns\":%.0f,\"errors\":%llu,\"dial_errors\":%llu,\"mismatches\":%llu,"
                "\"nofile_limit\":%lld,\"first_error\":\"%s\"",
                json_escape(cfg.label).c_str(), connected.load(), cfg.size,
                static_cast<unsigned long long>(completed), static_cast<unsigned long long>(n), rps,
                pct(50), pct(90), pct(99), pct(99.9), max_ns,
                static_cast<unsigned long long>(errors.load()),
                static_cast<unsigned long long>(dial_errors.load()),
                static_cast<unsigned long long>(mismatches.load()),
                lim.rlim_cur == RLIM_INFINITY ? -1LL : static_cast<long long>(lim.rlim_cur),
                json_escape(first_error).c_str());
  bench::print_result("echo", "", static_cast<std::uint64_t>(cfg.connections), workers, wall,
                      completed, completed, extra);
  if (connected.load() < cfg.connections)
    std::fprintf(stderr, "echo: only %d of %d connections were established (%s)\n",
                 connected.load(), cfg.connections, first_error.c_str());
  return mismatches.load() ? 1 : 0;
}
