import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { PageConfig } from '@jupyterlab/coreutils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';

import { archiveDialog, commandFor } from './filemenu';
import { LensPanel } from './panel';
import { LensStatus } from './status';

const PLUGIN_ID = 'jupyterlab-lens:plugin';
const DEFAULT_INTERVAL_S = 60;

namespace CommandIDs {
  export const openCosts = 'lens:open-costs';
  export const openPanel = 'lens:open-panel';
  export const archive = 'lens:archive';
  export const submitJob = 'lens:submit-job';
  export const share = 'lens:share-server';
}

const DASK_SIDEBAR_ID = 'dask-dashboard-launcher';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'lens: cost and budget in the status bar; jobs, costs, archives and sharing in a side panel.',
  autoStart: true,
  requires: [ILabShell],
  optional: [IStatusBar, IFileBrowserFactory, ISettingRegistry],
  activate: async (
    app: JupyterFrontEnd,
    shell: ILabShell,
    statusBar: IStatusBar | null,
    browsers: IFileBrowserFactory | null,
    settings: ISettingRegistry | null
  ) => {
    let intervalS = DEFAULT_INTERVAL_S;
    const loaded = settings ? await settings.load(PLUGIN_ID).catch(() => null) : null;
    if (loaded) {
      intervalS = loaded.get('refreshInterval').composite as number;
    }
    // dask-labextension's sidebar (the Dask tab: clusters titled with their cost), if installed
    const openDask = (): boolean => {
      const there = Array.from(shell.widgets('left')).some(w => w.id === DASK_SIDEBAR_ID);
      if (there) {
        shell.activateById(DASK_SIDEBAR_ID);
      }
      return there;
    };
    const panel = new LensPanel(intervalS * 1000, openDask);
    shell.add(panel, 'right', { rank: 900 });

    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'lens: Jobs, Costs and Archives',
      execute: () => shell.activateById(panel.id)
    });
    app.commands.addCommand(CommandIDs.openCosts, {
      label: 'lens: Costs',
      execute: () => {
        panel.select('costs');
        shell.activateById(panel.id);
      }
    });
    app.commands.addCommand(CommandIDs.share, {
      label: 'lens: Share this server…',
      caption: 'Give a user or a group access to this server (real-time editing with you)',
      execute: () => {
        panel.select('sharing');
        shell.activateById(panel.id);
      }
    });

    if (statusBar) {
      const status = new LensStatus(() => void app.commands.execute(CommandIDs.openCosts), intervalS * 1000);
      statusBar.registerStatusItem('jupyterlab-lens:status', { item: status, align: 'left', rank: 50 });
      loaded?.changed.connect(() => {
        const ms = (loaded.get('refreshInterval').composite as number) * 1000;
        status.refresher.interval = ms;
        panel.refresher.interval = ms;
      });
    }

    if (browsers) {
      const selected = () => Array.from(browsers.tracker.currentWidget?.selectedItems() ?? []);
      const root = PageConfig.getOption('serverRoot');
      app.commands.addCommand(CommandIDs.archive, {
        label: 'Archive…',
        caption: 'Archive these files or folders with lens',
        execute: async () => {
          const paths = selected().map(item => item.path);
          if (paths.length && (await archiveDialog(paths))) {
            panel.select('archives');
            shell.activateById(panel.id);
          }
        }
      });
      app.commands.addCommand(CommandIDs.submitJob, {
        label: 'Submit as job…',
        caption: 'Open the lens job form for this script',
        isVisible: () => selected().length === 1 && commandFor(selected()[0].path, root) !== null,
        execute: () => {
          const item = selected()[0];
          const command = item ? commandFor(item.path, root) : null;
          if (!command) {
            return;
          }
          panel.select('jobs');
          shell.activateById(panel.id);
          panel.jobs.prefill({ command, name: item.name.replace(/\.[^.]+$/, '') });
        }
      });
      app.contextMenu.addItem({ command: CommandIDs.archive, selector: '.jp-DirListing-item[data-isdir]', rank: 60 });
      app.contextMenu.addItem({ command: CommandIDs.submitJob, selector: '.jp-DirListing-item[data-isdir="false"]', rank: 61 });
    }
  }
};

export default plugin;
