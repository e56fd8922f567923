// Pure helpers: money and the status bar's text.
export const MICRO = 1_000_000;

export function usd(value: number | null | undefined, digits = 2): string {
  if (value === null || value === undefined) {
    return '—';
  }
  return `$${value.toFixed(digits)}`;
}

export function usdMicro(
  micro: number | null | undefined,
  digits = 4
): string {
  return micro === null || micro === undefined
    ? '—'
    : usd(micro / MICRO, digits);
}

export interface IStatusSummary {
  profile: string;
  hourly_cost_usd: number;
  spent_usd: number;
  held_usd: number;
  budget_usd: number | null;
  remaining_usd: number | null;
  used_pct: number | null;
  thresholds: number[];
  passed: number | null;
  level: 'none' | 'ok' | 'warn' | 'over';
  blocked: boolean;
  period_start: string;
  period_end: string;
}

export function statusText(s: IStatusSummary): string {
  const parts = [`${usd(s.hourly_cost_usd, 3)}/h`, `${usd(s.spent_usd)} this month`];
  parts.push(
    s.budget_usd === null ? 'no budget' : `${usd(s.remaining_usd)} left`
  );
  return parts.join(' · ');
}

export function statusTitle(s: IStatusSummary): string {
  const lines = [
    `This server${s.profile ? ` (${s.profile})` : ''}: ${usd(s.hourly_cost_usd, 4)} per hour`,
    `Spent this period: ${usd(s.spent_usd, 4)}; held for running work: ${usd(s.held_usd, 4)}`
  ];
  if (s.budget_usd === null) {
    lines.push('No budget is set.');
  } else {
    lines.push(
      `Budget ${usd(s.budget_usd)}: ${s.used_pct}% used, ${usd(s.remaining_usd, 4)} left` +
        (s.passed !== null ? ` (passed ${s.passed}%)` : '')
    );
  }
  lines.push('Click for the Costs tab.');
  return lines.join('\n');
}
