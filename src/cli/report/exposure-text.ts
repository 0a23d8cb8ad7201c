/** `credbroker report exposure` as text: the ranking table, then each identity's factors and flags. */
import type { ExposureReport } from './exposure-report.js';
import { textTable } from './text-table.js';
import { formatHours, plural } from './units.js';

/** The ranking as lines of text. */
export function exposureText(report: ExposureReport): string[] {
  const lines = [
    `credbroker report exposure: ${report.formula}`,
    `  policy ${report.policy.source} (sha256 ${report.policy.sha256.slice(0, 16)}…, trust domain ${report.policy.trustDomain}), generated ${report.generatedAt}`,
    '',
  ];
  if (report.identities.length === 0) {
    lines.push('  the policy has no identities: nothing is granted, nothing is exposed');
  } else {
    const flagged = report.identities.filter((e) => e.flags.length > 0).length;
    lines.push(`  ${plural(report.identities.length, 'identity', 'identities')}, highest exposure first; ${flagged} flagged`);
    const rows = report.identities.map((e) => [
      String(e.rank),
      e.id,
      e.role,
      formatHours(e.validity.value),
      String(e.privilegeScope.value),
      String(e.resources.value),
      String(e.score),
      e.flags.map((f) => f.code).join(', '),
    ]);
    lines.push(
      ...textTable(['#', 'identity', 'role', 'validity', 'scope', 'resources', 'exposure', 'flags'], rows, ['right', 'left', 'left', 'right', 'right', 'right', 'right', 'left']),
      '',
      'Why each score:',
    );
    for (const e of report.identities) {
      lines.push(`  ${e.rank}. ${e.id} (${e.role}, ${e.match}): ${e.score} = ${formatHours(e.validity.value)} × ${e.privilegeScope.value} × ${e.resources.value}`);
      lines.push(`     validity ${formatHours(e.validity.value)}: ${e.validity.explanation}`);
      lines.push(`     scope ${e.privilegeScope.value}: ${e.privilegeScope.explanation}`);
      lines.push(`     resources ${e.resources.value}: ${e.resources.explanation}`);
      for (const flag of e.flags) lines.push(`     ! ${flag.code}: ${flag.message}`);
    }
  }
  if (report.outlierAbove !== null) lines.push('', `Score outliers: above ${report.outlierAbove} (Q3 + 1.5 × IQR of the scores).`);
  if (report.policyFindings.length > 0) {
    lines.push('', 'Policy findings:');
    for (const finding of report.policyFindings) lines.push(`  ${finding.path} ${finding.message}`);
  }
  return lines;
}
