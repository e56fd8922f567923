// One call per interval, none while the browser tab is hidden; a tab that comes back
// after a full interval refreshes at once.
export class Refresher {
  private timer: number | null = null;
  private last = 0;
  private running = false;

  constructor(
    private readonly fetch: () => Promise<void>,
    private intervalMs: number
  ) {
    document.addEventListener('visibilitychange', this.onVisibility);
  }

  set interval(ms: number) {
    this.intervalMs = ms;
    this.schedule();
  }

  start(): void {
    void this.tick();
  }

  /** Refresh now (a user's action), and restart the interval from here. */
  async now(): Promise<void> {
    await this.tick(true);
  }

  dispose(): void {
    document.removeEventListener('visibilitychange', this.onVisibility);
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
    }
  }

  private onVisibility = (): void => {
    if (
      document.visibilityState === 'visible' &&
      Date.now() - this.last >= this.intervalMs
    ) {
      void this.tick();
    }
  };

  private schedule(): void {
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
    }
    this.timer = window.setTimeout(() => void this.tick(), this.intervalMs);
  }

  private async tick(force = false): Promise<void> {
    if (this.running || (!force && document.visibilityState === 'hidden')) {
      this.schedule();
      return;
    }
    this.running = true;
    this.last = Date.now();
    try {
      await this.fetch();
    } finally {
      this.running = false;
      this.schedule();
    }
  }
}
