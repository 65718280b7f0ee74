/** The soak's report: a summary table, the findings with their timelines, and the chart. */
import { formatNumber, lineChartSvg } from '../simulate/svg.js';
import { FAULT_COLORS, FAULT_DESCRIPTIONS, formatSchedule } from './chaos.js';
import type { SoakRun } from './run.js';

/** The chart: faults (shaded) against throughput, retry rate and queue depth. */
export function soakChart(run: SoakRun): string {
  const seconds = Math.max(1, ...run.samples.map((s) => s.t));
  const series = (pick: (s: SoakRun['samples'][number]) => number | undefined): number[] => {
    const values = new Array<number>(seconds + 1).fill(0);
    let last = 0;
    for (const s of run.samples) {
      const v = pick(s);
      last = v ?? last;
      values[s.t] = last;
    }
    return values;
  };
  const loadStart = run.loadStartedAt;
  const shades = run.faults.map((f) => ({
    label: f.kind,
    color: FAULT_COLORS[f.kind],
    from: (f.startedAt - loadStart) / 1000,
    to: Math.max((f.endedAt - loadStart) / 1000, (f.startedAt - loadStart) / 1000 + 0.3),
  }));
  return lineChartSvg({
    title: `Chaos soak: seed ${run.options.seed}, ${formatNumber(run.options.loadMs / 1000)} s of load, ${run.options.workers} workers`,
    subtitle: `${run.audit.verdict}. Shaded: injected faults (a restart's band lasts until the process is ready again). Queue depth: jobs waiting, delayed or active; the drain after the load promotes delayed jobs.`,
    xLabel: 'seconds since the load started',
    yLabel: 'per second',
    xStep: 1,
    xMax: seconds,
    panelHeight: 120,
    panels: [
      {
        title: 'Throughput: messages the API accepted, and all send requests, per second',
        series: [
          { label: 'accepted / s', color: '#1f77b4', values: series((s) => s.accepted) },
          {
            label: 'requests / s',
            color: '#aec7e8',
            values: series((s) => s.requests),
            dashed: true,
          },
        ],
        shades,
      },
      {
        title: 'Retry rate: requests for a message already requested, per second',
        series: [{ label: 're-sends / s', color: '#d62728', values: series((s) => s.resends) }],
        shades,
      },
      {
        title: 'Queue depth (sends)',
        series: [{ label: 'jobs in the queue', color: '#2ca02c', values: series((s) => s.depth) }],
        shades,
      },
    ],
  });
}

function table(rows: readonly (readonly [string, string])[]): string {
  return [
    '| | |',
    '|---|---|',
    ...rows.map(([k, v]) => `| ${k} | ${v.replaceAll('|', '\\|')} |`),
  ].join('\n');
}

/** The Markdown report; `chartFile` is the SVG's name beside it. */
export function soakMarkdown(run: SoakRun, chartFile: string): string {
  const a = run.audit;
  const o = a.outcomes;
  const kinds = [...new Set(run.faults.map((f) => f.kind))];
  const rows: [string, string][] = [
    ['Verdict', `**${a.verdict}** (${a.ok ? 'every check held' : 'see the findings'})`],
    ['Seed', String(run.options.seed)],
    [
      'Load',
      `${formatNumber(run.options.loadMs / 1000)} s at ${run.options.rate} msg/s (+ a burst of 2× a number's limit every 10 s); ${run.options.workers} worker processes × ${run.options.concurrency}`,
    ],
    [
      'Wall time',
      `${formatNumber(run.wallMs / 1000)} s (drain ${run.drained ? 'complete' : 'timed out'})`,
    ],
    ['Logical messages', String(a.messages)],
    ['Delivered exactly once', String(o.delivered)],
    ['Dead-lettered with history', String(o.dead_lettered)],
    ['Still queued or due at the end', String(o.pending)],
    ['Lost', String(a.lost)],
    [
      'Doubled',
      `${a.doubled} outside the documented windows; ${a.doubledJustified} inside them: ${a.justified.held} held sends whose statuses reached the receiver after the grace window (or never), ${a.justified.killed} sent by a worker SIGKILLed after Meta accepted, before it recorded the wamid`,
    ],
    [
      'Closed loop',
      `${a.resends.afterFailed} messages re-sent after a transient \`failed\` status, ${a.resends.unconfirmed} after a held send went unconfirmed past the grace window; ${a.resends.withoutCause} sent again after an accept outside the documented windows`,
    ],
    [
      'Stuck alerts',
      `${a.stuck.expected} messages whose statuses were dropped, ${a.stuck.alerted} reported \`message_stuck\` by a reconciler, ${a.stuck.missing} missing, ${a.stuck.repeated} repeated; ${a.stuck.unexpected} alerts for messages whose statuses were posted`,
    ],
    [
      'Status updates',
      `${a.updates.expected} expected, ${a.updates.queuedOnce} queued exactly once, ${a.updates.missing} missing, ${a.updates.doubled} queued twice`,
    ],
    [
      'Statuses',
      `${a.statuses.checked} sends checked, ${a.statuses.regressed} off their final status, ${a.statuses.unrecorded} accepted sends without their wamid in the record`,
    ],
    [
      'Dead letters',
      `${a.deadLetters.total} in Redis (${Object.entries(a.deadLetters.byKind)
        .map(([k, n]) => `${n} ${k}`)
        .join(
          ', ',
        )}), ${a.deadLetters.withoutHistory} without history; ${a.deadLetters.fallbackIds} went to the fallback files (${run.workerCounters.fallbackWrites} reported by workers), ${a.deadLetters.fallbackMissingFromQueue} missing after the replay, ${a.deadLetters.fallbackLeft} files left`,
    ],
    [
      'Rate limit',
      `${a.rate.numberExcess} requests beyond capacity + rate · t for any number (worst ${a.rate.worstNumber}); pair bucket, approximated per job run: ${a.rate.pairExcess} (informational)`,
    ],
    [
      'Requests',
      `${run.requests} to the API, ${run.accepted} accepted; ${Object.entries(run.fakeFaults)
        .map(([k, n]) => `${n} ${k}`)
        .join(', ')}`,
    ],
    [
      'Webhooks',
      `${run.webhookStats.events} status events posted, ${run.webhookStats.posts} posts, ${run.webhookStats.refused} refused or failed (and redelivered)`,
    ],
    [
      'Workers',
      `${run.workerCounters.jobsCompleted} jobs completed, ${run.workerCounters.jobsDeferred} deferred, ${run.workerCounters.retriesScheduled} retries scheduled (counters of killed workers end at their last report)`,
    ],
    ['Faults injected', `${run.faults.length} (${kinds.length} kinds)`],
  ];
  const findings =
    a.findings.length === 0
      ? 'None.'
      : a.findings
          .slice(0, 50)
          .map(
            (f) =>
              `### ${f.kind}: ${f.id}\n\n${f.summary}\n\n\`\`\`\n${f.timeline.join('\n') || '(no timeline)'}\n\`\`\``,
          )
          .join('\n\n') +
        (a.findings.length > 50 ? `\n\n…and ${a.findings.length - 50} more.` : '');
  return `# Chaos soak report

${table(rows)}

![faults against throughput, retry rate and queue depth](${chartFile})

## Chaos schedule (seed ${run.options.seed})

\`\`\`
${formatSchedule(run.schedule)}
\`\`\`

| fault | what it does |
|---|---|
${kinds.map((k) => `| ${k} | ${FAULT_DESCRIPTIONS[k]} |`).join('\n')}

## Findings

${findings}

## Verdict

\`${a.verdict}\`
`;
}
