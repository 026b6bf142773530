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

  /**
   * Resets one flow by the `flowId` of its header, for when Node's side of it failed: a TCP
   * client sees `ECONNRESET` instead of the clean end that closing the flow's socket would be,
   * so it cannot take a truncated answer for a whole one. A UDP flow is closed. False if no such
   * flow is open, or once the stack has stopped.
   */
  resetFlow(flowId: bigint): boolean {
    return this.handle !== undefined && this.lib.resetFlow(this.handle, flowId);
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
