// runtime/context_switch.cpp — rt_resume_context for x86-64 System V (see context_switch.hpp).
#include "context_switch.hpp"

#if defined(__x86_64__) && defined(__ELF__)
// The suspending side pushes, below the return address its call left at the top of its stack,
// what the System V ABI says a callee must preserve: the MXCSR control bits and the x87 control
// word (fctx+0x00, +0x04), r12..r15, rbx and rbp (fctx+0x08..+0x30); the return address is then
// at fctx+0x38, where Boost's jumps put theirs. The stack pointer at that point is its context.
// The resumed side's context is read back the same way, and the `ret` pops its return address:
// the resumed side returns from its own jump with rax = the suspended context, rdx = data (a
// transfer_t). A fresh context from make_fcontext cannot be resumed this way: its entry
// trampoline expects the context in rdi (Boost's jump_fcontext starts those).
asm(R"(
  .text
  .p2align 4
  .globl rt_resume_context
  .hidden rt_resume_context
  .type rt_resume_context,@function
rt_resume_context:
  .cfi_startproc
  leaq -0x38(%rsp), %rsp
  stmxcsr (%rsp)
  fnstcw 0x4(%rsp)
  movq %r12, 0x08(%rsp)
  movq %r13, 0x10(%rsp)
  movq %r14, 0x18(%rsp)
  movq %r15, 0x20(%rsp)
  movq %rbx, 0x28(%rsp)
  movq %rbp, 0x30(%rsp)
  movq %rsp, %rax
  movq %rdi, %rsp
  ldmxcsr (%rsp)
  fldcw 0x4(%rsp)
  movq 0x08(%rsp), %r12
  movq 0x10(%rsp), %r13
  movq 0x18(%rsp), %r14
  movq 0x20(%rsp), %r15
  movq 0x28(%rsp), %rbx
  movq 0x30(%rsp), %rbp
  leaq 0x38(%rsp), %rsp
  movq %rsi, %rdx
  ret
  .cfi_endproc
  .size rt_resume_context, .-rt_resume_context
)");
#endif
