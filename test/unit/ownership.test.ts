import test from 'ava';
import {
  LABEL_HOST_UID,
  ownerLabels,
  ownershipConflict,
  type SessionOwner,
} from '../../src/session/ownership.js';

const me: SessionOwner = {
  uid: '1000',
  hostUser: 'alice',
  kubeUser: 'alice@lab',
  kubeIdentity: 'aaaa',
};

test('a session started by the same host user with the same kubeconfig identity is yours', (t) => {
  t.is(ownershipConflict('s', ownerLabels(me), me), undefined);
});

test('a session started by another host user is refused, naming that user and uid', (t) => {
  const other = ownerLabels({ ...me, uid: '1001', hostUser: 'bob', kubeUser: 'bob@lab' });
  const err = ownershipConflict('tp-lab-samples', other, me);
  t.like(err, { category: 'state', code: 'SESSION_OWNED_ELSEWHERE' });
  t.regex(err?.message ?? '', /bob \(uid 1001\)/);
  t.regex(err?.message ?? '', /"bob@lab"/);
  t.regex(err?.fix ?? '', /--name <name>/);
  t.regex(err?.fix ?? '', /`tp quit --name tp-lab-samples` only if it is yours to end/);
});

test('a session of the same host user under another kubeconfig user is refused, naming both users', (t) => {
  const other = ownerLabels({ ...me, kubeUser: 'ci-bot', kubeIdentity: 'bbbb' });
  const err = ownershipConflict('s', other, me);
  t.like(err, { code: 'SESSION_OWNED_ELSEWHERE' });
  t.regex(err?.message ?? '', /kubeconfig user "ci-bot", not your "alice@lab"/);
});

test('the same kubeconfig user name with other credentials is refused too', (t) => {
  const err = ownershipConflict('s', ownerLabels({ ...me, kubeIdentity: 'bbbb' }), me);
  t.regex(err?.message ?? '', /"alice@lab" with other credentials/);
});

test('a session without owner labels (started before tp wrote them) is not refused', (t) => {
  t.is(ownershipConflict('s', { 'tp.managed': 'true' }, me), undefined);
});

test('the owner labels carry the uid as a string, as Docker labels must be', (t) => {
  t.is(ownerLabels(me)[LABEL_HOST_UID], '1000');
});
