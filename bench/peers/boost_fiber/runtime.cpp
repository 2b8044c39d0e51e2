// Runtime set-up for the Boost.Fiber peer: one work_stealing scheduler per OS
// thread, main thread included.
//
// The pattern is the one from the Boost.Fiber documentation: start the helper
// threads, have each one (and the main thread) call
// use_scheduling_algorithm<work_stealing>(thread_count), then meet at a
// barrier so that every scheduler is registered before the first fiber is
// created. After that, each helper's main fiber blocks on a fiber
// condition_variable until shutdown, which leaves that thread's dispatcher free
// to run and steal fibers.
//
// Single-thread caveat: in Boost 1.74, work_stealing::pick_next() picks a
// random victim "id != own id" in a loop, which never terminates when
// thread_count == 1 (fixed upstream later by checking schedulers_.size() > 1).
// So --workers 1 uses boost::fibers::algo::round_robin instead.
//
// work_stealing is constructed with its default suspend = false: idle threads
// spin looking for work instead of sleeping on a condition variable. That is
// Boost's default and what the documentation's examples use, but every worker
// thread then burns a CPU while idle, which hurts badly when there are fewer
// real cores than workers. Setting PEER_BOOST_FIBER_SUSPEND=1 in the
// environment passes suspend = true instead (idle threads sleep until notified
// or until their next timer); the JSON line then carries "ws_suspend":1 so such
// runs cannot be mistaken for default ones.

#include "common.hpp"

namespace peer {

namespace {
bool suspend_from_env() {
  const char* v = std::getenv("PEER_BOOST_FIBER_SUSPEND");
  return v != nullptr && v[0] == '1' && v[1] == '\0';
}
}  // namespace

Runtime::Runtime(unsigned workers)
    : workers_(workers), suspend_(suspend_from_env()), ready_(static_cast<std::ptrdiff_t>(workers)) {
  if (workers_ >= 2) {
    jobs_.resize(workers_ - 1);
    threads_.reserve(workers_ - 1);
    for (unsigned i = 0; i + 1 < workers_; ++i) {
      threads_.emplace_back(&Runtime::helper_main, this, i);
    }
    boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(workers_, suspend_);
    ready_.arrive_and_wait();
  } else {
    boost::fibers::use_scheduling_algorithm<boost::fibers::algo::round_robin>();
  }
}

Runtime::~Runtime() { shutdown(); }

void Runtime::helper_main(unsigned idx) {
  boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(workers_, suspend_);
  ready_.arrive_and_wait();

  std::unique_lock<boost::fibers::mutex> lk(mtx_);
  for (;;) {
    cv_.wait(lk, [&] { return shutdown_ || !jobs_[idx].empty(); });
    if (jobs_[idx].empty()) break;  // shutdown
    std::vector<std::function<void()>> jobs;
    jobs.swap(jobs_[idx]);
    lk.unlock();
    for (auto& job : jobs) go(std::move(job));
    lk.lock();
  }
}

void Runtime::launch_on_helper(unsigned idx, std::function<void()> fn) {
  {
    std::lock_guard<boost::fibers::mutex> lk(mtx_);
    jobs_.at(idx).push_back(std::move(fn));
  }
  cv_.notify_all();
}

void Runtime::shutdown() {
  if (threads_.empty()) return;
  {
    std::lock_guard<boost::fibers::mutex> lk(mtx_);
    shutdown_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace peer
