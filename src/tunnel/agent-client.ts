/**
 * The asking side of the agent's one-shot requests (`info`, `tar`), over a stream already
 * open to its port: a port-forward for the daemon and the CLI, plain TCP in tests.
 */
import type { Duplex, Readable } from 'node:stream';
import type { AgentInfo, AgentReply, AgentRequest, WriteSummary } from '../contract/agent.js';
import type { TarMeta } from '../contract/control.js';
import { AGENT_MAX_REPLY, parseAgentReply } from './agent-protocol.js';
import { FrameType, MAX_FRAME, encodeFrame, finDecoder } from './frames.js';
import { encodeLine, readLine } from './protocol.js';

export function agentRequest(
  stream: Duplex,
  req: AgentRequest,
  timeoutMs = 15_000,
): Promise<AgentReply> {
  return agentRequestReply(stream, encodeLine(req), timeoutMs);
}

/** Writes `last` and reads the agent's reply line. */
async function agentRequestReply(
  stream: Duplex,
  last: Buffer,
  timeoutMs: number,
): Promise<AgentReply> {
  stream.write(last);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`no reply from the agent within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    return parseAgentReply(await Promise.race([readLine(stream, AGENT_MAX_REPLY), timeout]));
  } finally {
    clearTimeout(timer);
  }
}

/** The agent's info; the stream is closed afterwards. */
export async function agentInfo(stream: Duplex, timeoutMs?: number): Promise<AgentInfo> {
  try {
    const reply = await agentRequest(stream, { op: 'info' }, timeoutMs);
    if (!reply.ok) throw new Error(`the agent: ${reply.error}`);
    if (!('info' in reply)) throw new Error('the agent answered info with something else');
    return reply.info;
  } finally {
    stream.destroy();
  }
}

/**
 * A tar of one mount, read from the stream after the reply line; it ends (and the stream is
 * closed) at the agent's end frame, and fails if the stream ends before it. `skipped` names
 * the files the agent could not read.
 */
export async function agentTar(
  stream: Duplex,
  path: string,
  timeoutMs?: number,
): Promise<{ tar: Readable } & TarMeta> {
  let reply;
  try {
    reply = await agentRequest(stream, { op: 'tar', path }, timeoutMs);
  } catch (err) {
    stream.destroy();
    throw err;
  }
  if (!reply.ok || !('tar' in reply)) {
    stream.destroy();
    throw new Error(`the agent: ${reply.ok ? 'answered tar with something else' : reply.error}`);
  }
  const { ok: _ok, tar: _tar, skipped = [], ...rest } = reply;
  return { tar: finDecoder(stream), skipped, ...rest };
}

/**
 * Files written locally, sent to a writable mount: the request, the tar in frames ending with
 * a FIN (the stream stays open for the reply: a port-forward cannot half-close), then the
 * agent's reply once it has written them. The stream is closed afterwards.
 */
export async function agentWrite(
  stream: Duplex,
  req: { path: string; deletes: string[] },
  tar: Buffer,
  timeoutMs = 60_000,
): Promise<WriteSummary> {
  try {
    stream.write(encodeLine({ op: 'write', path: req.path, deletes: req.deletes }));
    for (let off = 0; off < tar.length; off += MAX_FRAME) {
      stream.write(encodeFrame(FrameType.data, tar.subarray(off, off + MAX_FRAME)));
    }
    const reply = await agentRequestReply(stream, encodeFrame(FrameType.fin), timeoutMs);
    if (!reply.ok) throw new Error(`the agent: ${reply.error}`);
    if (!('written' in reply)) throw new Error('the agent answered write with something else');
    return reply.written;
  } finally {
    stream.destroy();
  }
}
