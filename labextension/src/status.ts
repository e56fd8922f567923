import { Widget } from '@lumino/widgets';

import { lensRequest } from './api';
import { IStatusSummary, statusText, statusTitle } from './format';
import { Refresher } from './refresher';

/** The status bar item: this server's $/h, this month's spend, the budget left. */
export class LensStatus extends Widget {
  readonly refresher: Refresher;
  summary: IStatusSummary | null = null;

  constructor(
    private readonly openCosts: () => void,
    intervalMs: number
  ) {
    super({ node: document.createElement('button') });
    this.addClass('jp-lens-status');
    this.node.setAttribute('type', 'button');
    this.node.dataset.level = 'loading';
    this.node.textContent = 'lens …';
    this.node.setAttribute('aria-label', 'lens costs: loading');
    this.node.addEventListener('click', () => this.openCosts());
    this.refresher = new Refresher(() => this.refresh(), intervalMs);
    this.refresher.start();
  }

  async refresh(): Promise<void> {
    try {
      const s = await lensRequest<IStatusSummary>('summary');
      this.summary = s;
      this.node.textContent = statusText(s);
      this.node.title = statusTitle(s);
      this.node.dataset.level = s.level;
      this.node.setAttribute('aria-label', `lens costs: ${statusText(s)}`);
    } catch (err) {
      this.node.dataset.level = 'error';
      this.node.textContent = 'lens: unavailable';
      this.node.title = `lens could not be reached: ${(err as Error).message}`;
      this.node.setAttribute('aria-label', this.node.title);
    }
  }

  dispose(): void {
    this.refresher.dispose();
    super.dispose();
  }
}
