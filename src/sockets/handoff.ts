/** Getting held sockets ready for a child to inherit. */
import { native } from './native.js';

/**
 * O_NONBLOCK lives on the open file description that the daemon and every child share, so a child
 * that switched a socket to non-blocking would break the next child's blocking accept(). Each
 * child therefore starts from blocking mode, the mode a freshly bound socket has.
 */
export function prepareForChild(fds: Iterable<number>): void {
  for (const fd of fds) native.setBlocking(fd, true);
}
