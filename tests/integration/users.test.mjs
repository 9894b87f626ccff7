// Accounts through the admin API: `username` is the account field in
// requests and responses (the old `name` still accepted and still sent, for
// one version); disabled accounts enabled again; accounts removed with their
// assessments given to another account or kept read-only, never deleted;
// the last admin cannot be removed; every change audited with who and whom.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, login, Client } from './lib/o2c.mjs';

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

let srv, admin;

before(async () => {
  srv = await startServer();
  admin = await login(srv.url);
});

after(async () => {
  const stopped = await srv.stop();
  assert.equal(stopped.code, 0, stopped.stderr);
  srv.cleanup();
});

async function addUser(username, role = 'consultant') {
  const r = await admin.post('/api/v1/users', { username, role, password: `${username}-password-123` });
  assert.equal(r.status, 201, r.text);
  return login(srv.url, username, `${username}-password-123`);
}

async function newAssessment(client, name) {
  const r = await client.post('/api/v1/assessments', { type: 'o2c', client: name });
  assert.equal(r.status, 201, r.text);
  return r.json;
}

async function auditOf(target) {
  const r = await admin.get('/api/v1/audit?limit=1000');
  assert.equal(r.status, 200, r.text);
  return r.json.items.filter((e) => e.target === target);
}

test('username is the account field; the old name is still accepted and still sent', async () => {
  const created = await admin.post('/api/v1/users', { username: 'uma', role: 'consultant', password: 'uma-password-123' });
  assert.equal(created.status, 201, created.text);
  assert.equal(created.json.username, 'uma');
  assert.equal(created.json.name, 'uma', 'the deprecated field is still sent');

  const old = await admin.post('/api/v1/users', { name: 'olga', role: 'consultant', password: 'olga-password-123' });
  assert.equal(old.status, 201, old.text);
  assert.equal(old.json.username, 'olga');

  const both = await admin.post('/api/v1/users', { username: 'x1', name: 'x2', role: 'consultant', password: 'x-password-1234' });
  assert.equal(both.status, 400);
  assert.match(both.json.error.message, /username and body\.name differ/);
  const none = await admin.post('/api/v1/users', { role: 'consultant', password: 'x-password-1234' });
  assert.equal(none.status, 400);
  assert.match(none.json.error.message, /body\.username: required/);

  const list = await admin.get('/api/v1/users');
  const uma = list.json.find((u) => u.username === 'uma');
  assert.ok(uma, JSON.stringify(list.json));
  assert.equal(uma.name, 'uma');
  assert.equal(uma.removed, false);

  const session = await new Client(srv.url).post('/api/v1/session', { username: 'uma', password: 'uma-password-123' });
  assert.equal(session.json.user.username, 'uma');
  const me = await new Client(srv.url, session.json.token).get('/api/v1/me');
  assert.equal(me.json.user.username, 'uma');
  const patched = await admin.patch('/api/v1/users/uma', { role: 'consultant' });
  assert.equal(patched.json.username, 'uma');

  const doc = (await admin.get('/api/v1/openapi.json')).json;
  const user = doc.components.schemas.User.properties;
  assert.ok(user.username, 'User has username');
  assert.equal(user.name.deprecated, true);
  assert.match(user.name.description, /use username; accepted until the next version/);
  const addBody = doc.paths['/api/v1/users'].post.requestBody.content['application/json'].schema.properties;
  assert.equal(addBody.name.deprecated, true);
  assert.ok(addBody.username);
  const remove = doc.paths['/api/v1/users/{username}'].delete;
  assert.equal(remove.operationId, 'usersRemove');
  assert.ok(remove.parameters.some((p) => p.name === 'reassign_to' && p.in === 'query'));
  for (const code of ['400', '403', '404', '409']) assert.ok(remove.responses[code], `DELETE documents ${code}`);
});

test('a disabled account is enabled again and can sign in; both audited with who and whom', async () => {
  await addUser('erin');
  assert.equal((await admin.patch('/api/v1/users/erin', { disabled: true })).status, 200);
  await assert.rejects(login(srv.url, 'erin', 'erin-password-123'), /401/);
  const enabled = await admin.patch('/api/v1/users/erin', { disabled: false });
  assert.equal(enabled.status, 200, enabled.text);
  assert.equal(enabled.json.disabled, false);
  await login(srv.url, 'erin', 'erin-password-123');
  const events = (await auditOf('erin')).map((e) => `${e.user} ${e.action}`);
  assert.ok(events.includes('admin user.disabled') && events.includes('admin user.enabled'), events.join(', '));
});

// Over the API the one asking is an enabled admin other than the target, so
// "the last enabled admin" is refused as "your own account"; the store's own
// refusal is shown by `o2c user remove` (cli_store.test.mjs).
test('an admin cannot remove their own account; another admin can be removed', async () => {
  const self = await admin.del('/api/v1/users/admin');
  assert.equal(self.status, 409, self.text);
  assert.match(self.json.error.message, /your own account/);
  assert.equal((await admin.get('/api/v1/me')).status, 200);
  const root = await addUser('root', 'admin');
  const removed = await admin.del('/api/v1/users/root');
  assert.equal(removed.status, 200, removed.text);
  assert.equal((await root.get('/api/v1/me')).status, 401);
});

test('remove with reassign_to: assessments move, the account cannot sign in, its session ends', async () => {
  const bob = await addUser('bob');
  const carol = await addUser('carol');
  const a1 = await newAssessment(bob, 'Bob Client One');
  const a2 = await newAssessment(bob, 'Bob Client Two');
  const saved = await bob.patch(`/api/v1/assessments/${a1.id}/answers`, { revision: a1.revision, answers: { bi_timing: 'same_day' } });
  assert.equal(saved.status, 200, saved.text);

  const unknown = await admin.del('/api/v1/users/bob?reassign_to=nobody');
  assert.equal(unknown.status, 400);
  assert.match(unknown.json.error.message, /nobody: no such account/);
  await addUser('dora');
  assert.equal((await admin.patch('/api/v1/users/dora', { disabled: true })).status, 200);
  const toDisabled = await admin.del('/api/v1/users/bob?reassign_to=dora');
  assert.equal(toDisabled.status, 400);
  assert.match(toDisabled.json.error.message, /dora: that account is disabled/);
  const toSelf = await admin.del('/api/v1/users/bob?reassign_to=bob');
  assert.equal(toSelf.status, 400);
  assert.equal((await bob.get('/api/v1/me')).status, 200, 'refused removals changed nothing');

  const removed = await admin.del('/api/v1/users/bob?reassign_to=carol');
  assert.equal(removed.status, 200, removed.text);
  assert.equal(removed.json.user.username, 'bob');
  assert.equal(removed.json.user.removed, true);
  assert.equal(removed.json.reassigned_to, 'carol');
  assert.equal(removed.json.assessments_reassigned, 2);
  assert.equal(removed.json.revoked_sessions, 1);

  assert.equal((await bob.get('/api/v1/me')).status, 401, 'the removed account\'s session still works');
  await assert.rejects(login(srv.url, 'bob', 'bob-password-123'), /401/);

  const mine = (await carol.get('/api/v1/assessments')).json.items.map((a) => a.client).sort();
  assert.deepEqual(mine, ['Bob Client One', 'Bob Client Two']);
  const got = await carol.get(`/api/v1/assessments/${a1.id}`);
  assert.equal(got.json.owner_name, 'carol');
  assert.equal(got.json.read_only, false);
  assert.equal(got.json.answers.bi_timing.value ?? got.json.answers.bi_timing, 'same_day', 'answers kept');
  const again = await carol.patch(`/api/v1/assessments/${a2.id}/answers`, { revision: a2.revision, answers: { bi_timing: 'real_time' } });
  assert.equal(again.status, 200, again.text);

  const list = (await admin.get('/api/v1/users')).json;
  const tomb = list.find((u) => u.username === 'bob');
  assert.equal(tomb.removed, true, 'the removed account stays listed, marked removed');
  assert.equal(tomb.disabled, true);
  const changed = await admin.patch('/api/v1/users/bob', { disabled: false });
  assert.equal(changed.status, 409, 'a removed account cannot be enabled again');
  assert.match(changed.json.error.message, /bob was removed/);
  const reused = await admin.post('/api/v1/users', { username: 'bob', role: 'consultant', password: 'bob-password-456' });
  assert.equal(reused.status, 409);
  assert.match(reused.json.error.message, /removed account/);

  const event = (await auditOf('bob')).find((e) => e.action === 'user.removed');
  assert.ok(event, 'removal not audited');
  assert.equal(event.user, 'admin');
  assert.deepEqual(event.details, { reassigned_to: 'carol', assessments: 2, revoked_sessions: 1 });
});

test('remove without reassign_to: assessments stay, read-only and visible to admins, until reassigned', async () => {
  const dave = await addUser('dave');
  const a = await newAssessment(dave, 'Dave Client');
  const saved = await dave.patch(`/api/v1/assessments/${a.id}/answers`, { revision: a.revision, answers: { bi_timing: 'within_week' } });
  assert.equal(saved.status, 200, saved.text);
  assert.equal((await dave.put(`/api/v1/assessments/${a.id}/attachments/kept.png`, PNG)).status, 201);

  const removed = await admin.del('/api/v1/users/dave');
  assert.equal(removed.status, 200, removed.text);
  assert.equal(removed.json.assessments_read_only, 1);
  assert.equal(removed.json.reassigned_to, undefined);
  assert.equal((await dave.get('/api/v1/me')).status, 401);

  const seen = await admin.get(`/api/v1/assessments/${a.id}`);
  assert.equal(seen.status, 200, 'an admin still sees it');
  assert.equal(seen.json.owner_name, 'dave', 'the removed owner is still named');
  assert.equal(seen.json.read_only, true);
  assert.ok((await admin.get('/api/v1/assessments')).json.items.some((x) => x.id === a.id));

  const save = await admin.patch(`/api/v1/assessments/${a.id}/answers`, { revision: saved.json.revision, answers: { bi_timing: 'real_time' } });
  assert.equal(save.status, 403, save.text);
  assert.equal(save.json.error.code, 'refused');
  assert.match(save.json.error.message, /read-only: its owner dave was removed/);
  assert.equal((await admin.put(`/api/v1/assessments/${a.id}/attachments/new.png`, PNG)).status, 403);
  assert.equal((await admin.del(`/api/v1/assessments/${a.id}/attachments/kept.png`)).status, 403);
  assert.equal((await admin.del(`/api/v1/assessments/${a.id}`)).status, 403, 'never deleted');
  const still = await admin.get(`/api/v1/assessments/${a.id}`);
  assert.equal(still.json.revision, saved.json.revision, 'nothing changed');
  assert.equal((await admin.get(`/api/v1/assessments/${a.id}/attachments`)).json.length, 1);

  const twice = await admin.del('/api/v1/users/dave');
  assert.equal(twice.status, 409);
  assert.match(twice.json.error.message, /already removed/);

  // Later an admin gives the read-only work to someone: editable again.
  const erin = await login(srv.url, 'erin', 'erin-password-123');
  const moved = await admin.del('/api/v1/users/dave?reassign_to=erin');
  assert.equal(moved.status, 200, moved.text);
  assert.equal(moved.json.assessments_reassigned, 1);
  const edit = await erin.patch(`/api/v1/assessments/${a.id}/answers`, { revision: saved.json.revision, answers: { bi_timing: 'real_time' } });
  assert.equal(edit.status, 200, edit.text);
  const actions = (await auditOf('dave')).map((e) => `${e.user} ${e.action}`);
  assert.ok(actions.includes('admin user.removed') && actions.includes('admin user.assessments_reassigned'), actions.join(', '));
});
