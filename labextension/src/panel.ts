import { LabIcon } from '@jupyterlab/ui-components';
import { TabPanel, Widget } from '@lumino/widgets';

import { ArchivesTab } from './archives';
import { CostsTab } from './costs';
import { JobsTab } from './jobs';
import { Refresher } from './refresher';
import { SharingTab } from './sharing';

const LENS_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
  '<path d="M10 3a7 7 0 015.6 11.2l5.1 5.1-1.4 1.4-5.1-5.1A7 7 0 1110 3zm0 2a5 5 0 100 10 5 5 0 000-10z"/></g></svg>';

export const lensIcon = new LabIcon({ name: 'jupyterlab-lens:icon', svgstr: LENS_SVG });

type TabName = 'jobs' | 'costs' | 'archives' | 'sharing';

/** The lens side panel: Jobs, Costs, Archives, Sharing; the visible tab refreshes on the interval. */
export class LensPanel extends TabPanel {
  readonly jobs = new JobsTab();
  readonly costs: CostsTab;
  readonly archives = new ArchivesTab();
  readonly sharing = new SharingTab();
  readonly refresher: Refresher;

  constructor(intervalMs: number, openDask: (() => boolean) | null = null) {
    super();
    this.costs = new CostsTab(openDask);
    this.id = 'jp-lens-panel';
    this.addClass('jp-lens-panel');
    this.title.icon = lensIcon;
    this.title.caption = 'lens: jobs, costs, archives, sharing';
    this.node.setAttribute('aria-label', 'lens');
    this.addWidget(this.jobs);
    this.addWidget(this.costs);
    this.addWidget(this.archives);
    this.addWidget(this.sharing);
    this.tabBar.node.setAttribute('aria-label', 'lens tabs');
    this.currentChanged.connect(() => void this.refreshCurrent());
    this.refresher = new Refresher(() => this.refreshCurrent(), intervalMs);
  }

  private started = false;

  /** Start polling only once the panel is first shown. */
  protected onAfterShow(): void {
    if (!this.started) {
      this.started = true;
      this.refresher.start();
    } else {
      void this.refreshCurrent();
    }
  }

  async refreshCurrent(): Promise<void> {
    if (!this.isVisible) {
      return;
    }
    const current = this.currentWidget as Widget & { refresh?: () => Promise<void> };
    if (current?.refresh) {
      await current.refresh();
    }
  }

  select(tab: TabName): void {
    this.currentWidget = this[tab];
  }

  dispose(): void {
    this.refresher.dispose();
    super.dispose();
  }
}
