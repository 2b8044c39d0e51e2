// tests/model/model.hpp — randomized model-based testing of channels and select.
//
// generate(seed) makes a small program that always terminates (see "Program shape" below);
// execute() runs it on the runtime, recording every completed operation with a begin/end stamp
// from one global counter; check() compares the histories with Go's channel semantics.
//
// Program shape (why it cannot deadlock):
// - Channels are "closed" (they have a closer, a drainer, and blocking traffic) or "open" (no
//   closer; only non-blocking traffic or cases inside a select that has another guaranteed case).
// - A drainer per closed channel receives until the channel is closed and drained, so every
//   blocking send on a closed channel eventually completes (or throws once it is closed).
// - The closer of channel c waits for every *counted sender* of c (a fiber whose ops may send on
//   c), then closes c, and sometimes closes it a second time (which must throw).
// - Counted senders: blocking sends on closed channels; selects without `otherwise` always hold
//   a send case on a closed channel (guaranteed to finish); never a plain blocking recv.
// - Late senders are not counted: their sends race with the close and may throw channel_closed.
// - Receivers: blocking recv on closed channels (ends at the latest when it is closed); selects
//   without `otherwise` hold a recv case on a closed channel; never send.
// - main waits for everyone, then drains the open channels without blocking.
//
// What check() verifies (exactly, from the histories):
// 1. every received value was sent successfully on that channel, and is received once only;
// 2. every successfully sent value is received exactly once (by a fiber, a drainer or main's
//    final drain); a send that threw never delivers its value; unchosen select cases send nothing;
// 3. FIFO per (sender, channel): one receiver sees a sender's values in send order, and no
//    receive of a later value ends before the receive of an earlier value begins;
// 4. close: exactly one close succeeds per closed channel; a second close throws "close of
//    closed channel"; sends throw only on closed channels, with "send on closed channel", only
//    when their op ended after the close began, and never for counted senders; a send that
//    began after the close ended throws; recv yields nullopt only on a closed channel, after
//    the close began, and only once every value whose send ended before that recv began has
//    been taken by a receive that began before the nullopt recv ended (drained);
// 5. select: the returned index is the case whose callback ran; `otherwise` never runs when one
//    of the select's channels was already closed when it began (such a case is always ready).
// 6. open channels: len() <= cap(), cap() as made, and empty after main's drain.
//
// Deadlock vs. model (with_stuck_op): the same program with one fiber ending in an operation
// nothing can complete (recv/send on a fresh unbuffered channel, a select whose only cases are a
// recv and a send on one fresh channel plus a nil channel — a select must not pair with itself —,
// recv/send on the nil channel). The model's verdict is "deadlock" under every schedule; the
// runtime must print Go's report naming that wait and exit with status 2. Programs whose verdict
// depends on the schedule are not generated.
#pragma once

#include <rt/csp.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace model {

// splitmix64: a deterministic generator whose output does not depend on the standard library.
struct rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  int below(int n) { return static_cast<int>(next() % static_cast<std::uint64_t>(n)); }
  bool chance(int percent) { return below(100) < percent; }
};

enum class op_kind { send, recv, select, sleep };
enum class role { sender, late_sender, receiver };

struct sel_case {
  bool is_send;
  int ch;
};

struct op {
  op_kind kind;
  int ch = -1;
  std::vector<sel_case> cases;
  bool has_otherwise = false;
  int sleep_us = 0;
};

struct fiber_prog {
  role r;
  std::vector<op> ops;
};

struct program {
  std::uint64_t seed;
  std::vector<std::size_t> cap;
  std::vector<bool> closed;        // has a closer (and a drainer)
  std::vector<bool> double_close;  // the closer closes twice
  std::vector<int> close_sleep_us;
  std::vector<fiber_prog> fibers;
  bool has_sleep = false;
  // Deadlock variant (with_stuck_op): after its ops, fiber stuck_fiber blocks forever in an
  // operation nothing can complete, so the model's verdict is "deadlock" under every schedule.
  int stuck_fiber = -1;
  int stuck_kind = 0;  // see stuck_reason()
  std::size_t op_count() const {
    std::size_t n = 0;
    for (auto& f : fibers) n += f.ops.size();
    return n;
  }
  std::string describe() const;
};

inline program generate(std::uint64_t seed) {
  rng g{seed};
  program p;
  p.seed = seed;
  const int C = 1 + g.below(3);
  static constexpr std::size_t caps[] = {0, 1, 3};
  std::vector<int> closed_chans, all_chans;
  for (int c = 0; c < C; ++c) {
    p.cap.push_back(caps[g.below(3)]);
    const bool closed = c == 0 || g.chance(70);
    p.closed.push_back(closed);
    p.double_close.push_back(closed && g.chance(30));
    p.close_sleep_us.push_back(g.chance(30) ? 1 + g.below(50) : 0);
    all_chans.push_back(c);
    if (closed) closed_chans.push_back(c);
  }
  const int K = 2 + g.below(5);
  auto pick = [&](const std::vector<int>& v) {
    return v[static_cast<std::size_t>(g.below(static_cast<int>(v.size())))];
  };
  for (int f = 0; f < K; ++f) {
    fiber_prog fp;
    const int r = g.below(100);
    fp.r = r < 45 ? role::sender : r < 60 ? role::late_sender : role::receiver;
    const int n = 1 + g.below(6);
    for (int i = 0; i < n; ++i) {
      op o;
      const int k = g.below(100);
      if (fp.r != role::receiver) {
        if (k < 35) {
          o.kind = op_kind::send;
          o.ch = pick(closed_chans);
        } else if (k < 85) {
          o.kind = op_kind::select;
          const int ncases = 2 + g.below(2);
          o.has_otherwise = g.chance(40);
          for (int j = 0; j < ncases; ++j) o.cases.push_back({g.chance(60), pick(all_chans)});
          if (!o.has_otherwise) {  // a guaranteed case: a send on a closed channel
            auto& c = o.cases[static_cast<std::size_t>(g.below(ncases))];
            c.is_send = true;
            c.ch = pick(closed_chans);
          }
        } else {
          o.kind = op_kind::sleep;
          o.sleep_us = 1 + g.below(30);
          p.has_sleep = true;
        }
      } else {
        if (k < 40) {
          o.kind = op_kind::recv;
          o.ch = pick(closed_chans);
        } else if (k < 85) {
          o.kind = op_kind::select;
          const int ncases = 2 + g.below(2);
          o.has_otherwise = g.chance(40);
          for (int j = 0; j < ncases; ++j) o.cases.push_back({false, pick(all_chans)});
          if (!o.has_otherwise)
            o.cases[static_cast<std::size_t>(g.below(ncases))].ch = pick(closed_chans);
        } else {
          o.kind = op_kind::sleep;
          o.sleep_us = 1 + g.below(30);
          p.has_sleep = true;
        }
      }
      fp.ops.push_back(std::move(o));
    }
    p.fibers.push_back(std::move(fp));
  }
  for (int c : closed_chans)
    if (p.close_sleep_us[static_cast<std::size_t>(c)]) p.has_sleep = true;
  return p;
}

// The deadlock variant of generate(seed): one fiber ends with an operation that can never
// complete. Everything else still terminates, so the runtime must report a deadlock.
inline program with_stuck_op(program p) {
  rng g{p.seed ^ 0x5bd1e995ull};
  p.stuck_fiber = g.below(static_cast<int>(p.fibers.size()));
  p.stuck_kind = g.below(5);
  return p;
}

// What the deadlock report says the stuck fiber waits on.
inline const char* stuck_reason(int kind) {
  static const char* const r[] = {"chan receive", "chan send", "select",
                                  "chan receive \\(nil chan\\)", "chan send \\(nil chan\\)"};
  return r[kind];
}

inline std::string program::describe() const {
  std::ostringstream o;
  o << "program seed=" << seed << "\n";
  for (std::size_t c = 0; c < cap.size(); ++c)
    o << "  chan " << c << " cap=" << cap[c] << (closed[c] ? " closed" : " open")
      << (double_close[c] ? " double-close" : "") << "\n";
  for (std::size_t f = 0; f < fibers.size(); ++f) {
    auto& fp = fibers[f];
    o << "  fiber " << f << " "
      << (fp.r == role::sender        ? "sender"
          : fp.r == role::late_sender ? "late-sender"
                                      : "receiver")
      << ":";
    for (auto& op : fp.ops) {
      switch (op.kind) {
        case op_kind::send:
          o << " send(" << op.ch << ")";
          break;
        case op_kind::recv:
          o << " recv(" << op.ch << ")";
          break;
        case op_kind::sleep:
          o << " sleep(" << op.sleep_us << "us)";
          break;
        case op_kind::select:
          o << " select{";
          for (auto& c : op.cases) o << (c.is_send ? "send(" : "recv(") << c.ch << ") ";
          o << (op.has_otherwise ? "default}" : "}");
          break;
      }
    }
    if (static_cast<int>(f) == stuck_fiber) o << " then stuck(" << stuck_kind << ")";
    o << "\n";
  }
  return o.str();
}

// ---- execution ------------------------------------------------------------------------------

enum class outcome { ok, nullopt, threw, otherwise };

struct rec {
  op_kind kind;  // send/recv/select; close is recorded as kind=sleep with is_close
  bool is_close = false;
  int ch = -1;  // channel of the case that ran (or of the op)
  int op_index = -1;
  outcome res = outcome::ok;
  bool case_is_send = false;
  std::uint64_t value = 0;             // sent or received value
  std::vector<std::uint64_t> offered;  // values of every send case of a select (unchosen: unsent)
  std::vector<int> sel_chans;          // channels of a select's cases
  int case_idx = -1;
  std::size_t returned = 0;
  std::string what;
  std::uint64_t b = 0, e = 0;
};

struct result {
  std::vector<std::vector<rec>> hist;  // [fiber]: workers, then drainers, closers, main
  std::vector<std::size_t> cap_seen, len_after;
  std::vector<std::size_t> len_max;
  std::vector<std::vector<std::size_t>> len_max_by_fiber;  // [fiber][chan]: no shared writes
  std::string panic;                                       // an exception rethrown by rt::run
};

inline std::uint64_t value_of(std::size_t fiber, std::uint64_t seq) {
  return (static_cast<std::uint64_t>(fiber + 1) << 32) | seq;
}

namespace detail {

struct sel_ctx {
  std::vector<rt::chan<std::uint64_t>>* chans;
  const op* o;
  std::vector<std::uint64_t> values;  // per case (0 for recv cases)
  int ran = -1;
  std::optional<std::uint64_t> got;
};

template <class... Cs>
std::size_t do_select(sel_ctx& ctx, std::size_t i, Cs&&... cs) {
  if (i == ctx.o->cases.size()) {
    if (ctx.o->has_otherwise)
      return rt::select(std::forward<Cs>(cs)..., rt::otherwise([&ctx] { ctx.ran = 1000; }));
    return rt::select(std::forward<Cs>(cs)...);
  }
  if constexpr (sizeof...(Cs) < 3) {
    const sel_case& c = ctx.o->cases[i];
    auto ch = (*ctx.chans)[static_cast<std::size_t>(c.ch)];
    const int idx = static_cast<int>(i);
    if (!c.is_send)
      return do_select(ctx, i + 1, std::forward<Cs>(cs)...,
                       rt::recv(ch, [&ctx, idx](std::optional<std::uint64_t> v) {
                         ctx.ran = idx;
                         ctx.got = v;
                       }));
    return do_select(ctx, i + 1, std::forward<Cs>(cs)...,
                     rt::send(ch, ctx.values[i], [&ctx, idx] { ctx.ran = idx; }));
  } else {
    std::terminate();
  }
}

}  // namespace detail

inline result execute(const program& p, unsigned workers, std::uint64_t chaos_seed) {
  const std::size_t C = p.cap.size(), K = p.fibers.size();
  result out;
  out.hist.resize(K + 2 * C + 1);
  out.cap_seen.assign(C, 0);
  out.len_after.assign(C, 0);
  out.len_max.assign(C, 0);
  out.len_max_by_fiber.assign(K, std::vector<std::size_t>(C, 0));
  std::atomic<std::uint64_t> clock{0};
  auto tick = [&clock] { return clock.fetch_add(1, std::memory_order_seq_cst) + 1; };

  rt::options opts;
  opts.workers = workers;
  opts.capture_panics = true;
  opts.chaos_seed = chaos_seed;
  try {
    rt::run(
        [&] {
          std::vector<rt::chan<std::uint64_t>> chans;
          for (std::size_t c = 0; c < C; ++c)
            chans.push_back(rt::make_chan<std::uint64_t>(p.cap[c]));
          for (std::size_t c = 0; c < C; ++c) out.cap_seen[c] = chans[c].cap();
          std::vector<rt::wait_group> senders_done(C);
          rt::wait_group all_done;
          // Count the senders of each closed channel before anything runs.
          for (std::size_t f = 0; f < K; ++f) {
            if (p.fibers[f].r != role::sender) continue;
            std::set<int> sends_on;
            for (auto& o : p.fibers[f].ops) {
              if (o.kind == op_kind::send) sends_on.insert(o.ch);
              if (o.kind == op_kind::select)
                for (auto& c : o.cases)
                  if (c.is_send) sends_on.insert(c.ch);
            }
            for (int c : sends_on)
              if (p.closed[static_cast<std::size_t>(c)])
                senders_done[static_cast<std::size_t>(c)].add(1);
          }
          auto worker = [&](std::size_t f) {
            auto& h = out.hist[f];
            const fiber_prog& fp = p.fibers[f];
            std::set<int> sends_on;
            std::uint64_t seq = 0;
            for (std::size_t i = 0; i < fp.ops.size(); ++i) {
              const op& o = fp.ops[i];
              rec r;
              r.kind = o.kind;
              r.op_index = static_cast<int>(i);
              switch (o.kind) {
                case op_kind::sleep:
                  rt::sleep_for(std::chrono::microseconds(o.sleep_us));
                  continue;
                case op_kind::send: {
                  sends_on.insert(o.ch);
                  r.ch = o.ch;
                  r.case_is_send = true;
                  r.value = value_of(f, ++seq);
                  r.b = tick();
                  try {
                    chans[static_cast<std::size_t>(o.ch)].send(r.value);
                  } catch (const rt::channel_closed& e) {
                    r.res = outcome::threw;
                    r.what = e.what();
                  }
                  r.e = tick();
                  break;
                }
                case op_kind::recv: {
                  r.ch = o.ch;
                  r.b = tick();
                  auto v = chans[static_cast<std::size_t>(o.ch)].recv();
                  r.e = tick();
                  if (v)
                    r.value = *v;
                  else
                    r.res = outcome::nullopt;
                  break;
                }
                case op_kind::select: {
                  detail::sel_ctx ctx{&chans, &o, {}, -1, std::nullopt};
                  for (auto& c : o.cases) {
                    ctx.values.push_back(c.is_send ? value_of(f, ++seq) : 0);
                    r.sel_chans.push_back(c.ch);
                    if (c.is_send) {
                      r.offered.push_back(ctx.values.back());
                      sends_on.insert(c.ch);
                    }
                  }
                  r.b = tick();
                  try {
                    r.returned = detail::do_select(ctx, 0);
                  } catch (const rt::channel_closed& e) {
                    r.res = outcome::threw;
                    r.what = e.what();
                  }
                  r.e = tick();
                  if (r.res != outcome::threw) {
                    if (ctx.ran == 1000) {
                      r.res = outcome::otherwise;
                      r.case_idx = 1000;
                    } else {
                      r.case_idx = ctx.ran;
                      if (ctx.ran >= 0) {
                        const sel_case& c = o.cases[static_cast<std::size_t>(ctx.ran)];
                        r.ch = c.ch;
                        r.case_is_send = c.is_send;
                        if (c.is_send)
                          r.value = ctx.values[static_cast<std::size_t>(ctx.ran)];
                        else if (ctx.got)
                          r.value = *ctx.got;
                        else
                          r.res = outcome::nullopt;
                      }
                    }
                  }
                  break;
                }
              }
              h.push_back(std::move(r));
              for (std::size_t c = 0; c < C; ++c) {
                const std::size_t l = chans[c].len();
                if (l > out.len_max_by_fiber[f][c]) out.len_max_by_fiber[f][c] = l;
              }
            }
            if (static_cast<int>(f) == p.stuck_fiber) {
              auto fresh = rt::make_chan<std::uint64_t>(0);  // nobody else ever sees it
              rt::chan<std::uint64_t> nil;
              switch (p.stuck_kind) {
                case 0:
                  fresh.recv();
                  break;
                case 1:
                  fresh.send(1);
                  break;
                case 2:
                  rt::select(rt::recv(fresh), rt::send(fresh, std::uint64_t{2}), rt::recv(nil));
                  break;
                case 3:
                  nil.recv();
                  break;
                default:
                  nil.send(3);
                  break;
              }
              std::terminate();  // unreachable: the model says it blocks forever
            }
            if (fp.r == role::sender)
              for (int c : sends_on)
                if (p.closed[static_cast<std::size_t>(c)])
                  senders_done[static_cast<std::size_t>(c)].done();
            all_done.done();
          };
          for (std::size_t c = 0; c < C; ++c) {
            if (!p.closed[c]) continue;
            all_done.add(2);
            rt::go([&, c] {  // drainer
              auto& h = out.hist[K + c];
              for (;;) {
                rec r;
                r.kind = op_kind::recv;
                r.ch = static_cast<int>(c);
                r.b = tick();
                auto v = chans[c].recv();
                r.e = tick();
                if (v)
                  r.value = *v;
                else
                  r.res = outcome::nullopt;
                h.push_back(r);
                if (!v) break;
              }
              all_done.done();
            });
            rt::go([&, c] {  // closer
              auto& h = out.hist[K + C + c];
              senders_done[c].wait();
              if (p.close_sleep_us[c])
                rt::sleep_for(std::chrono::microseconds(p.close_sleep_us[c]));
              for (int n = 0; n < (p.double_close[c] ? 2 : 1); ++n) {
                rec r;
                r.kind = op_kind::sleep;
                r.is_close = true;
                r.ch = static_cast<int>(c);
                r.b = tick();
                try {
                  chans[c].close();
                } catch (const rt::channel_closed& e) {
                  r.res = outcome::threw;
                  r.what = e.what();
                }
                r.e = tick();
                h.push_back(r);
              }
              all_done.done();
            });
          }
          for (std::size_t f = 0; f < K; ++f) {
            all_done.add(1);
            rt::go(worker, f);
          }
          all_done.wait();
          // Drain the open channels without blocking: nobody else is left.
          auto& h = out.hist[K + 2 * C];
          for (std::size_t c = 0; c < C; ++c) {
            if (p.closed[c]) continue;
            for (;;) {
              rec r;
              r.kind = op_kind::recv;
              r.ch = static_cast<int>(c);
              std::optional<std::uint64_t> got;
              bool empty = false;
              r.b = tick();
              rt::select(rt::recv(chans[c], [&](std::optional<std::uint64_t> v) { got = v; }),
                         rt::otherwise([&] { empty = true; }));
              r.e = tick();
              if (empty) break;
              if (got)
                r.value = *got;
              else
                r.res = outcome::nullopt;
              h.push_back(r);
            }
            out.len_after[c] = chans[c].len();
          }
        },
        opts);
    for (auto& m : out.len_max_by_fiber)
      for (std::size_t c = 0; c < C; ++c) out.len_max[c] = std::max(out.len_max[c], m[c]);
  } catch (const std::exception& e) {
    out.panic = e.what();
  } catch (...) {
    out.panic = "non-std exception";
  }
  return out;
}

// ---- checking -------------------------------------------------------------------------------

struct check_stats {
  std::size_t ops = 0;  // records checked
  std::size_t selects = 0, otherwise = 0, nullopt = 0, threw = 0;
};

// Returns "" when the histories are consistent with Go's semantics, else what is wrong.
inline std::string check(const program& p, const result& res, check_stats* stats = nullptr) {
  std::ostringstream err;
  if (!res.panic.empty()) return "rt::run rethrew: " + res.panic;
  const std::size_t C = p.cap.size(), K = p.fibers.size();
  struct send_info {
    int ch;
    std::size_t fiber;
    bool sent;  // completed without throwing, as the chosen case or a plain send
    std::uint64_t b, e;
  };
  struct recv_info {
    std::size_t fiber;
    std::uint64_t b, e;
  };
  std::map<std::uint64_t, send_info> sends;  // every offered value
  std::map<std::uint64_t, recv_info> recvs;  // every received value
  std::vector<std::optional<std::pair<std::uint64_t, std::uint64_t>>> close_at(
      C);  // successful close b,e
  std::vector<int> close_ok(C, 0), close_threw(C, 0);
  std::size_t n = 0;
  auto fail = [&](const std::string& s) {
    if (err.tellp() < 4000) err << s << "\n";
  };
  // Pass 1: closes.
  for (std::size_t c = 0; c < C; ++c) {
    for (auto& r : res.hist[K + C + c]) {
      ++n;
      if (r.res == outcome::ok) {
        ++close_ok[c];
        close_at[c] = std::make_pair(r.b, r.e);
      } else {
        ++close_threw[c];
        if (r.what != "close of closed channel") fail("close threw '" + r.what + "'");
      }
    }
    if (p.closed[c]) {
      if (close_ok[c] != 1)
        fail("chan " + std::to_string(c) + ": " + std::to_string(close_ok[c]) +
             " successful closes");
      if (close_threw[c] != (p.double_close[c] ? 1 : 0))
        fail("chan " + std::to_string(c) + ": second close did not throw");
    }
    if (res.cap_seen[c] != p.cap[c])
      fail("chan " + std::to_string(c) + ": cap() " + std::to_string(res.cap_seen[c]));
    if (res.len_max[c] > p.cap[c])
      fail("chan " + std::to_string(c) + ": len() " + std::to_string(res.len_max[c]) + " > cap");
    if (res.len_after[c] != 0)
      fail("chan " + std::to_string(c) + ": len() after drain " + std::to_string(res.len_after[c]));
  }
  auto closed_before = [&](int c, std::uint64_t t) {  // close finished before t
    auto& ca = close_at[static_cast<std::size_t>(c)];
    return ca && ca->second < t;
  };
  // Pass 2: sends (everything offered), and per-op checks.
  std::vector<std::pair<std::size_t, const rec*>> recv_recs;
  for (std::size_t f = 0; f < res.hist.size(); ++f) {
    const bool worker = f < K;
    const bool counted = worker && p.fibers[f].r == role::sender;
    for (auto& r : res.hist[f]) {
      if (r.is_close) continue;
      ++n;
      if (stats) {
        stats->selects += r.kind == op_kind::select;
        stats->otherwise += r.res == outcome::otherwise;
        stats->nullopt += r.res == outcome::nullopt;
        stats->threw += r.res == outcome::threw;
      }
      std::ostringstream where;
      where << "fiber " << f << " op " << r.op_index << ": ";
      if (r.kind == op_kind::send) {
        if (!sends.emplace(r.value, send_info{r.ch, f, r.res == outcome::ok, r.b, r.e}).second)
          fail(where.str() + "value offered twice");
      }
      if (r.kind == op_kind::select) {
        std::size_t vi = 0;
        for (auto& c : p.fibers[f].ops[static_cast<std::size_t>(r.op_index)].cases) {
          if (!c.is_send) continue;
          const std::uint64_t v = r.offered[vi++];
          const bool chosen = r.res == outcome::ok && r.case_is_send && r.value == v;
          sends.emplace(v, send_info{c.ch, f, chosen, r.b, r.e});
        }
        const std::size_t ncases = r.sel_chans.size();
        if (r.res == outcome::otherwise) {
          if (r.returned != ncases)
            fail(where.str() + "otherwise ran but select returned " + std::to_string(r.returned));
          for (int c : r.sel_chans)
            if (closed_before(c, r.b))
              fail(where.str() + "otherwise ran although chan " + std::to_string(c) +
                   " was closed before the select began");
        } else if (r.res != outcome::threw) {
          if (r.case_idx < 0 || static_cast<std::size_t>(r.case_idx) >= ncases)
            fail(where.str() + "no callback ran");
          else if (r.returned != static_cast<std::size_t>(r.case_idx))
            fail(where.str() + "select returned " + std::to_string(r.returned) + " but case " +
                 std::to_string(r.case_idx) + " ran");
        }
      }
      const bool is_send_op =
          r.kind == op_kind::send ||
          (r.kind == op_kind::select && (r.res == outcome::threw || r.case_is_send));
      if (r.res == outcome::threw) {
        if (r.what != "send on closed channel") fail(where.str() + "threw '" + r.what + "'");
        if (counted) fail(where.str() + "a counted sender saw a closed channel");
        // Some send case's channel must have been closed (its close began before the op ended).
        bool any = false;
        if (r.kind == op_kind::send)
          any = close_at[static_cast<std::size_t>(r.ch)] &&
                close_at[static_cast<std::size_t>(r.ch)]->first < r.e;
        else
          for (std::size_t i = 0; i < r.sel_chans.size(); ++i) {
            auto& c = p.fibers[f].ops[static_cast<std::size_t>(r.op_index)].cases[i];
            auto& ca = close_at[static_cast<std::size_t>(c.ch)];
            if (c.is_send && ca && ca->first < r.e) any = true;
          }
        if (!any)
          fail(where.str() + "send threw channel_closed but no send channel had begun closing");
      } else if (is_send_op && r.res == outcome::ok) {
        if (closed_before(r.ch, r.b))
          fail(where.str() + "send succeeded on chan " + std::to_string(r.ch) +
               " closed before it began");
      }
      if (r.res == outcome::nullopt) {
        auto& ca = close_at[static_cast<std::size_t>(r.ch)];
        if (!p.closed[static_cast<std::size_t>(r.ch)] || !ca)
          fail(where.str() + "nullopt from a channel never closed");
        else if (ca->first > r.e)
          fail(where.str() + "nullopt before close began");
      }
      if (!is_send_op && (r.res == outcome::ok || r.res == outcome::nullopt) &&
          r.kind != op_kind::send)
        recv_recs.emplace_back(f, &r);
    }
  }
  // Pass 3: receives.
  std::vector<std::map<std::size_t, std::uint64_t>> last_seq(
      res.hist.size());  // per receiver: (sender*8+ch) -> last seq
  for (auto& [f, rp] : recv_recs) {
    const rec& r = *rp;
    if (r.res != outcome::ok) continue;
    auto it = sends.find(r.value);
    std::ostringstream where;
    where << "fiber " << f << " op " << r.op_index << ": value " << (r.value >> 32) - 1 << "."
          << (r.value & 0xffffffff) << " ";
    if (it == sends.end()) {
      fail(where.str() + "received but never offered");
      continue;
    }
    if (!it->second.sent) fail(where.str() + "received but its send did not complete");
    if (it->second.ch != r.ch) fail(where.str() + "received on the wrong channel");
    if (!recvs.emplace(r.value, recv_info{f, r.b, r.e}).second)
      fail(where.str() + "received twice");
    const std::size_t key = it->second.fiber * 8 + static_cast<std::size_t>(r.ch);
    auto& ls = last_seq[f][key];
    const std::uint64_t s = r.value & 0xffffffff;
    if (s <= ls) fail(where.str() + "received out of order by one receiver");
    ls = s;
  }
  for (auto& [v, s] : sends) {
    if (s.sent && !recvs.count(v))
      fail("value " + std::to_string((v >> 32) - 1) + "." + std::to_string(v & 0xffffffff) +
           " sent on chan " + std::to_string(s.ch) + " but never received");
  }
  // FIFO across receivers: for values a < b from one sender on one channel, recv(b).e > recv(a).b.
  std::map<std::size_t, std::vector<std::pair<std::uint64_t, recv_info>>> by_pair;
  for (auto& [v, ri] : recvs) {
    auto& s = sends.at(v);
    by_pair[s.fiber * 8 + static_cast<std::size_t>(s.ch)].emplace_back(
        v, ri);  // map order: ascending value
  }
  for (auto& [key, vec] : by_pair) {
    std::uint64_t max_b = 0;  // the latest begin among earlier values
    for (auto& [v, ri] : vec) {
      if (ri.e < max_b)
        fail("FIFO: value " + std::to_string(v & 0xffffffff) + " of sender " +
             std::to_string(key / 8) + " on chan " + std::to_string(key % 8) +
             " received before an earlier value's receive began");
      max_b = std::max(max_b, ri.b);
    }
  }
  // nullopt only once drained: every value whose send ended before the nullopt recv began was
  // taken by a receive that began before the nullopt recv ended.
  for (auto& [f, rp] : recv_recs) {
    const rec& r = *rp;
    if (r.res != outcome::nullopt) continue;
    for (auto& [v, s] : sends) {
      if (!s.sent || s.ch != r.ch || s.e >= r.b) continue;
      auto it = recvs.find(v);
      if (it != recvs.end() && it->second.b > r.e)
        fail("fiber " + std::to_string(f) + ": nullopt from chan " + std::to_string(r.ch) +
             " while value " + std::to_string(v & 0xffffffff) + " was still undelivered");
    }
  }
  if (stats) stats->ops += n;
  return err.str();
}

// One history as text, for comparing replays.
inline std::string fingerprint(const result& res) {
  std::ostringstream o;
  for (std::size_t f = 0; f < res.hist.size(); ++f) {
    o << f << ":";
    for (auto& r : res.hist[f])
      o << " " << static_cast<int>(r.kind) << r.is_close << "/" << r.ch << "/"
        << static_cast<int>(r.res) << "/" << r.value << "/" << r.case_idx << "@" << r.b << "-"
        << r.e;
    o << "\n";
  }
  return o.str();
}

}  // namespace model
