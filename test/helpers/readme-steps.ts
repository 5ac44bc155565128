// Turns the README's shell blocks into the steps a reader takes, in order: plain commands,
// `export`s, and the long-running ones a reader starts in another terminal (servers, agents,
// watchers). Pure: the README test (test/readme.test.ts) runs the steps.

export type Step =
  | { kind: 'run'; command: string; line: number }
  | { kind: 'background'; command: string; line: number; readyWhen: RegExp }
  | { kind: 'export'; name: string; value: string; line: number }
  | { kind: 'skip'; command: string; line: number; why: string };

/** Commands that keep running, and the output line that says they are up. */
const LONG_RUNNING: Array<[RegExp, RegExp]> = [
  [/^npm start\b/, /Ctrl-C stops both/],
  [/\bserver run\b/, /tessera server ready/],
  [/\bagent run\b/, /tessera agent ready/],
  [/\bsvid watch\b/, /\S/],
  [/--follow\b/, /\S/],
];

/** The steps of every ```sh block in `markdown`, each multi-line command joined. */
export function readmeSteps(markdown: string): Step[] {
  const steps: Step[] = [];
  const lines = markdown.split('\n');
  let inBlock = false;
  let pending = '';
  let pendingLine = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    if (/^```/.test(raw)) {
      inBlock = !inBlock && /^```(sh|bash|shell)\s*$/.test(raw);
      continue;
    }
    if (!inBlock) continue;
    const text = stripComment(raw).trimEnd();
    if (!pending && !text.trim()) continue;
    if (!pending) pendingLine = i + 1;
    if (text.endsWith('\\')) {
      pending += text.slice(0, -1) + ' ';
      continue;
    }
    steps.push(...stepsOf((pending + text).trim().replace(/\s+/g, ' '), pendingLine));
    pending = '';
  }
  return steps;
}

/** `npm start`'s "Next, in another terminal:" lines as steps. */
export function nextCommands(output: string): Step[] {
  const m = /Next, in another terminal:\n((?: {2}.*\n?)+)/.exec(output);
  if (!m?.[1]) return [];
  return m[1]
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .flatMap((l) => stepsOf(l, 0));
}

/** The `<placeholder>`s a command still holds. */
export function placeholders(command: string): string[] {
  return [...command.matchAll(/<([a-zA-Z][^<>]*)>/g)].map((m) => m[1] ?? '');
}

function stepsOf(command: string, line: number): Step[] {
  const exp = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(command);
  if (exp) return [{ kind: 'export', name: exp[1] ?? '', value: exp[2] ?? '', line }];
  // `npm ci && npm start`: the dependencies are installed by the time tests run.
  const parts = command.split(/\s*&&\s*/);
  if (parts[0] === 'npm ci' && parts.length > 1) return stepsOf(parts.slice(1).join(' && '), line);
  if (/^npm test\b/.test(command))
    return [{ kind: 'skip', command, line, why: 'this is the test run' }];
  if (/^npm run bench\b/.test(command))
    return [
      {
        kind: 'skip',
        command,
        line,
        why: 'benchmarks are measured by npm run bench, not timed in tests',
      },
    ];
  for (const [re, readyWhen] of LONG_RUNNING) {
    if (re.test(command)) return [{ kind: 'background', command, line, readyWhen }];
  }
  return [{ kind: 'run', command, line }];
}

function stripComment(line: string): string {
  // A `#` starts a comment outside quotes when it begins the line or follows a space.
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && (i === 0 || line[i - 1] === ' ')) {
      return line.slice(0, i);
    }
  }
  return line;
}
