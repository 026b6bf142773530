import { buildResponse, readQuestion, readSections, Rcode, type Question } from './message.js';
import { encodeName, lowerWire, splitLabels } from './name.js';

/**
 * Short names from clients that do not apply the search list (`dig echo`, `host echo.samples`)
 * reach tp as they were typed. For one or two labels, tp tries what a search-list resolver
 * would have tried in the cluster: `a` as `a.<ns>.svc.<domain>`; `a.b` as a pod of a headless
 * service, `a.b.<ns>.svc.<domain>`, then as a service in namespace b, `a.b.svc.<domain>`.
 * Longer names (`svc.ns.svc`) are left to the search list: expanding every name would send
 * each public lookup through the cluster first.
 */
export function shortNameCandidates(
  question: Question,
  namespace: string,
  clusterDomain: string,
): Buffer[] {
  const labels = splitLabels(question.wire).length;
  const asked = question.wire.subarray(0, -1);
  const under = (suffix: string): Buffer => Buffer.concat([asked, encodeName(suffix)]);
  const suffixes =
    labels === 1
      ? [`${namespace}.svc.${clusterDomain}`]
      : labels === 2
        ? [`${namespace}.svc.${clusterDomain}`, `svc.${clusterDomain}`]
        : [];
  const candidates: Buffer[] = [];
  for (const suffix of suffixes) {
    try {
      candidates.push(under(suffix));
    } catch {
      // The expanded name is over 255 bytes: no such name in the cluster either.
    }
  }
  return candidates;
}

/**
 * The client's answer built from the cluster's answer for an expanded name, or undefined when
 * the cluster has no records for it (then the name is looked up upstream as typed).
 *
 * Records owned by the expanded name are given the asked name as owner, as if the short name
 * existed. A CNAME from the asked name to the expanded one would also be correct, but it needs
 * the same copying of records, and it shows the client a name it did not ask for. Other
 * records (the target of an ExternalName CNAME) are copied as they are. Authority and
 * additional records are dropped: they describe the expanded name's zone, not the asked name.
 */
export function answerForShortName(
  query: Buffer,
  expanded: Buffer,
  clusterAnswer: Buffer,
): Buffer | undefined {
  const { header, answers } = readSections(clusterAnswer);
  if (!header.qr || header.rcode !== Rcode.noError || answers.length === 0) return undefined;
  const asked = readQuestion(query).wire;
  const target = lowerWire(expanded);
  const rewritten = answers.map((r) =>
    lowerWire(r.owner).equals(target) ? { ...r, owner: asked } : r,
  );
  return buildResponse(query, { rcode: Rcode.noError, answers: rewritten, aa: header.aa });
}
