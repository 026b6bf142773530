/**
 * Who started a session. Docker is shared by everyone on the machine and the default session
 * name comes from the context and namespace alone, so another user, or the same user with
 * another kubeconfig identity, would otherwise find and silently reuse a session that is not
 * theirs, with that session's credentials.
 */
import { userInfo } from 'node:os';
import { TpError } from '../lib/errors.js';

export const LABEL_HOST_UID = 'tp.host-uid';
export const LABEL_HOST_USER = 'tp.host-user';
export const LABEL_KUBE_USER = 'tp.kube-user';
export const LABEL_KUBE_IDENTITY = 'tp.kube-identity';

export interface SessionOwner {
  /** The host user's uid, as a string (labels are strings). */
  uid: string;
  hostUser: string;
  /** The kubeconfig's name for the user entry. */
  kubeUser: string;
  /** A hash of the server and the user's credentials (src/k8s/kubeconfig.ts kubeIdentity). */
  kubeIdentity: string;
}

/** The owner a connect run by this process would write on its daemon container. */
export function currentOwner(kube: { user: string; hash: string }): SessionOwner {
  let uid = String(process.getuid?.() ?? -1);
  let hostUser = process.env.USER ?? process.env.USERNAME ?? '';
  try {
    const info = userInfo();
    uid = String(info.uid);
    hostUser = info.username;
  } catch {
    // No passwd entry for this uid (a container with an arbitrary uid): keep what we have.
  }
  return { uid, hostUser, kubeUser: kube.user, kubeIdentity: kube.hash };
}

export function ownerLabels(o: SessionOwner): Record<string, string> {
  return {
    [LABEL_HOST_UID]: o.uid,
    [LABEL_HOST_USER]: o.hostUser,
    [LABEL_KUBE_USER]: o.kubeUser,
    [LABEL_KUBE_IDENTITY]: o.kubeIdentity,
  };
}

/**
 * Whether `me` may use the session whose daemon carries `labels`; an error saying who owns it
 * when not. A session without these labels predates them and is taken as the caller's: there
 * is nothing to compare.
 */
export function ownershipConflict(
  session: string,
  labels: Readonly<Record<string, string>>,
  me: SessionOwner,
): TpError | undefined {
  const uid = labels[LABEL_HOST_UID];
  const hostUser = labels[LABEL_HOST_USER] ?? '?';
  const kubeUser = labels[LABEL_KUBE_USER] ?? '?';
  const identity = labels[LABEL_KUBE_IDENTITY];
  let who: string | undefined;
  if (uid !== undefined && uid !== me.uid) {
    who = `another user of this machine, ${hostUser} (uid ${uid}), as kubeconfig user "${kubeUser}"`;
  } else if (identity !== undefined && identity !== me.kubeIdentity) {
    who =
      kubeUser === me.kubeUser
        ? `kubeconfig user "${kubeUser}" with other credentials or another server than yours`
        : `kubeconfig user "${kubeUser}", not your "${me.kubeUser}"`;
  }
  if (who === undefined) return undefined;
  return new TpError('state', `Session ${session} was started by ${who}; tp will not reuse it.`, {
    code: 'SESSION_OWNED_ELSEWHERE',
    fix: `Start a session of your own under another name with --name <name>; end this one with \`tp quit --name ${session}\` only if it is yours to end.`,
  });
}
