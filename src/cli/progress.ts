/**
 * Progress for long steps. A TTY gets a spinner redrawn in place; anything else (CI logs,
 * pipes) gets one plain line when a step starts and one when it ends.
 */
export interface Progress {
  step(label: string): ProgressStep;
}

export interface ProgressStep {
  /** Replace the detail shown after the label, e.g. a build's current instruction. */
  update(detail: string): void;
  succeed(detail?: string): void;
  fail(detail?: string): void;
}

interface Sink {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export const silentProgress: Progress = {
  step: () => ({ update: noop, succeed: noop, fail: noop }),
};

function noop(): void {
  // Silent progress reports nothing.
}

export function createProgress(sink: Sink, now: () => number = Date.now): Progress {
  return sink.isTTY === true ? new SpinnerProgress(sink, now) : new LineProgress(sink, now);
}

function elapsed(start: number, now: () => number): string {
  return `${((now() - start) / 1000).toFixed(1)}s`;
}

class LineProgress implements Progress {
  constructor(
    private readonly sink: Sink,
    private readonly now: () => number,
  ) {}

  step(label: string): ProgressStep {
    const start = this.now();
    let ended = false;
    let lastDetail = '';
    this.sink.write(`... ${label}\n`);
    const end = (mark: string, detail?: string): void => {
      if (ended) return;
      ended = true;
      const suffix = detail === undefined || detail === '' ? '' : `: ${detail}`;
      this.sink.write(`${mark} ${label}${suffix} (${elapsed(start, this.now)})\n`);
    };
    return {
      // Plain output gets each distinct detail once: enough to follow a build in a CI log.
      update: (detail) => {
        if (ended || detail === lastDetail) return;
        lastDetail = detail;
        this.sink.write(`    ${detail}\n`);
      },
      succeed: (detail) => {
        end('ok', detail);
      },
      fail: (detail) => {
        end('failed', detail);
      },
    };
  }
}

class SpinnerProgress implements Progress {
  constructor(
    private readonly sink: Sink,
    private readonly now: () => number,
  ) {}

  step(label: string): ProgressStep {
    const start = this.now();
    let frame = 0;
    let detail = '';
    const draw = (): void => {
      const text = detail === '' ? label : `${label}: ${detail}`;
      this.sink.write(`\r\x1b[K${frames[frame % frames.length] ?? ''} ${text.slice(0, 110)}`);
      frame += 1;
    };
    draw();
    const timer = setInterval(draw, 80);
    // A spinner must never keep the process alive on its own.
    timer.unref();
    let ended = false;
    const end = (mark: string, final?: string): void => {
      if (ended) return;
      ended = true;
      clearInterval(timer);
      const suffix = final === undefined || final === '' ? '' : `: ${final}`;
      this.sink.write(`\r\x1b[K${mark} ${label}${suffix} (${elapsed(start, this.now)})\n`);
    };
    return {
      update: (d) => {
        detail = d;
      },
      succeed: (d) => {
        end('✔', d);
      },
      fail: (d) => {
        end('✖', d);
      },
    };
  }
}

/** A byte count for people: 512 B, 3.4 KiB, 64.0 MiB. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u] ?? ''}`;
}

/**
 * A step's detail for a copy: a bar when the total is known, the bytes so far otherwise. The
 * total is an estimate (a tar carries headers as well), so the bar stops short of full.
 */
export function byteProgress(done: number, total: number | undefined, width = 20): string {
  if (total === undefined || total <= 0) return formatBytes(done);
  const ratio = Math.min(done / total, 0.99);
  const filled = Math.floor(ratio * width);
  const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
  return `[${bar}] ${Math.floor(ratio * 100)}% ${formatBytes(done)} of ${formatBytes(total)}`;
}
