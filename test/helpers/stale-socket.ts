// A Unix socket file with nothing behind it: what an agent killed with SIGKILL leaves behind.
import { spawn } from 'node:child_process';
import { lstatSync } from 'node:fs';

/** Binds `socketPath` in a child process that is then killed before it can clean up. */
export async function leaveStaleSocket(socketPath: string): Promise<void> {
  const code = `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`;
  const child = spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  if (!lstatSync(socketPath).isSocket()) throw new Error(`${socketPath} is not a socket`);
}
