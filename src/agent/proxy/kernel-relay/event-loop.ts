// Taking a spliced socket out of the agent's event loop. After the kernel redirects what a routed
// socket received, it still calls the socket's own data-ready callback, which wakes every epoll
// set holding the socket; libuv's finds nothing to read and sleeps again — one context switch
// per redirected batch, in the agent, for traffic it never sees. Stopping Node's reads does not
// help: libuv takes a stopped descriptor out of its epoll set only when an event for it is
// reported, and none ever is. So the relay removes it itself (EPOLL_CTL_DEL on the loop's epoll
// descriptor); when Node reads the socket again, libuv adds it back as for any stopped watcher.
//
// The loop's epoll descriptor is found once, from /proc/self/fdinfo: the eventpoll that holds
// this very socket (its descriptor number and inode). It lives as long as the process.
import { fstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { loadLibc } from '../../bpf/libc.ts';

const EPOLL_CTL_DEL = 2;
let loopEpoll: number | undefined;

/**
 * Takes socket `fd` out of the event loop's epoll set (Node must have stopped reading it).
 * False when that set cannot be found or does not hold it (nothing changed).
 */
export function stopPolling(fd: number): boolean {
  loopEpoll ??= findEpoll(fd);
  if (loopEpoll === undefined) return false;
  return loadLibc().epollCtl(loopEpoll, EPOLL_CTL_DEL, fd, null) === 0;
}

/** The eventpoll descriptor of this process holding `fd` (the same file: its inode), if any. */
function findEpoll(fd: number): number | undefined {
  let ino: string;
  try {
    ino = fstatSync(fd).ino.toString(16);
  } catch {
    return undefined;
  }
  const wanted = new RegExp(`^tfd:\\s+${fd}\\s.*\\sino:${ino}(\\s|$)`, 'm');
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${name}`) !== 'anon_inode:[eventpoll]') continue;
      if (wanted.test(readFileSync(`/proc/self/fdinfo/${name}`, 'latin1'))) return Number(name);
    } catch {
      // closed meanwhile
    }
  }
  return undefined;
}
