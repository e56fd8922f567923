// The job spec the submit form makes: the same keys `%atom submit` sends
// (jupyter_ext/kernel/magics/atom.py build_spec); the service validates it.
export interface IJobForm {
  name: string;
  app: string;
  version: string;
  vcpus: string;
  memory: string;
  gpus: string;
  nodes: string;
  walltime: string;
  array: string;
  after: string;
  backend: string;
  command: string;
  script: string;
}

function wholeNumber(value: string, what: string): number | undefined {
  const v = value.trim();
  if (!v) {
    return undefined;
  }
  if (!/^[0-9]+$/.test(v)) {
    throw new Error(`${what} must be a whole number, not ${JSON.stringify(v)}`);
  }
  return parseInt(v, 10);
}

/** Split a command line on whitespace: the words are run literally, never by a shell. */
export function words(line: string): string[] {
  return line.split(/\s+/).filter(w => w.length > 0);
}

export function buildSpec(form: IJobForm): Record<string, unknown> {
  const spec: Record<string, unknown> = {};
  const text: [keyof IJobForm, string][] = [
    ['name', 'name'],
    ['app', 'app'],
    ['version', 'version'],
    ['memory', 'memory'],
    ['walltime', 'walltime'],
    ['backend', 'backend']
  ];
  for (const [key, out] of text) {
    const v = form[key].trim();
    if (v) {
      spec[out] = v;
    }
  }
  for (const key of ['vcpus', 'gpus', 'nodes', 'array'] as const) {
    const n = wholeNumber(form[key], key);
    if (n !== undefined) {
      spec[key] = n;
    }
  }
  const after = form.after
    .split(/[\s,]+/)
    .map(x => x.trim())
    .filter(Boolean);
  if (after.length) {
    spec.depends_on = after;
  }
  const command = words(form.command);
  if (form.script.trim()) {
    if (command.length) {
      throw new Error('Give either a script or a command, not both.');
    }
    spec.script = form.script;
  } else if (command.length) {
    spec.command = command;
  }
  if (!spec.name) {
    spec.name =
      (spec.app as string) ||
      (command.length ? command[0].split('/').pop() : 'job');
  }
  return spec;
}
