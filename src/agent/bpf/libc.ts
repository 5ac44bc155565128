// libc through koffi for the agent's BPF users (the kernel relay, the socket-holder iterator):
// bpf(2) and pidfd_getfd(2) by number, getsockopt(2), getsockname(2), poll(2), epoll_ctl(2),
// close(2), bound once on first use.
import type Koffi from 'koffi';
import { libcLibrary } from '../attestation/peer-credentials.ts';

export interface Libc {
  koffi: typeof Koffi;
  syscall: (...args: unknown[]) => unknown;
  getsockopt: (fd: number, level: number, name: number, val: Buffer, len: number[]) => number;
  getsockname: (fd: number, addr: Buffer, len: number[]) => number;
  poll: (fds: Buffer, nfds: number, timeoutMs: number) => number;
  epollCtl: (epfd: number, op: number, fd: number, event: Buffer | null) => number;
  close: (fd: number) => number;
}

let libc: Libc | undefined;

export function loadLibc(): Libc {
  if (libc) return libc;
  const { koffi, lib } = libcLibrary();
  libc = {
    koffi,
    syscall: lib.func('long syscall(long number, ...)') as (...args: unknown[]) => unknown,
    getsockopt: lib.func(
      'int getsockopt(int fd, int level, int name, void *optval, _Inout_ uint32_t *optlen)',
    ) as Libc['getsockopt'],
    getsockname: lib.func(
      'int getsockname(int fd, _Out_ void *addr, _Inout_ uint32_t *addrlen)',
    ) as Libc['getsockname'],
    poll: lib.func('int poll(_Inout_ void *fds, unsigned long nfds, int timeout)') as Libc['poll'],
    epollCtl: lib.func('int epoll_ctl(int epfd, int op, int fd, void *event)') as Libc['epollCtl'],
    close: lib.func('int close(int fd)') as Libc['close'],
  };
  return libc;
}
