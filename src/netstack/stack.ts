import type { NetstackLibrary, StackConfig, StackStats } from './library.js';

/**
 * A running netstack: the TUN device, its routes and the Go stack behind it. `stop()` removes
 * the device and its routes and may be called any number of times.
 */
export class RunningNetstack implements AsyncDisposable {
  private handle: number | undefined;

  private constructor(
    private readonly lib: NetstackLibrary,
    handle: number,
    readonly config: Readonly<StackConfig>,
  ) {
    this.handle = handle;
  }

  static start(lib: NetstackLibrary, config: StackConfig): RunningNetstack {
    return new RunningNetstack(lib, lib.start(config), config);
  }

  get running(): boolean {
    return this.handle !== undefined;
  }

  addRoute(cidr: string): void {
    this.lib.addRoute(this.live(), cidr);
  }

  removeRoute(cidr: string): void {
    this.lib.removeRoute(this.live(), cidr);
  }

  stats(): StackStats {
    return this.lib.stats(this.live());
  }

  stop(): Promise<void> {
    if (this.handle !== undefined) {
      this.lib.stop(this.handle);
      this.handle = undefined;
    }
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  private live(): number {
    if (this.handle === undefined) throw new Error('the netstack has been stopped');
    return this.handle;
  }
}
