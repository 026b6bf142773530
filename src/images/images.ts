import { join } from 'node:path';
import type { DockerEngine } from '../docker/engine.js';
import type { Progress } from '../cli/progress.js';
import { LABEL_CONTEXT_HASH, LABEL_VERSION, tpLabels } from '../lib/labels.js';
import { clientVersion } from '../lib/package-info.js';
import { collectFiles, contextTar, type ContextSource } from './context.js';
import { stageProductionDeps } from './deps.js';
import { stageGoVendor } from './go-vendor.js';
import { imageContext, recipes, stagedPackages, type ImageComponent } from './recipes.js';

export type { ImageComponent } from './recipes.js';

/** The base images the Dockerfiles start from, by the names Docker Hub uses. */
export const baseImages = {
  node: 'node:20-bookworm-slim',
  go: 'golang:1.26-bookworm',
} as const;

export interface ImageStatus {
  component: ImageComponent;
  ref: string;
  present: boolean;
  /** The image was built from exactly the files this tp would build it from now. */
  current: boolean;
  version?: string;
  contextHash: string;
}

export function imageRef(component: ImageComponent, version = clientVersion()): string {
  return `tp-${component}:${version}`;
}

export async function imageStatus(
  engine: DockerEngine,
  component: ImageComponent,
): Promise<ImageStatus> {
  const ref = imageRef(component);
  const ctx = await imageContext(component);
  const info = await engine.imageInfo(ref);
  const status: ImageStatus = {
    component,
    ref,
    present: info !== undefined,
    current: info?.labels[LABEL_CONTEXT_HASH] === ctx.hash,
    contextHash: ctx.hash,
  };
  const version = info?.labels[LABEL_VERSION];
  if (version !== undefined) status.version = version;
  return status;
}

/**
 * Makes sure the component's image exists and was built from this tp's files, building it
 * (with progress) when it is missing or stale.
 */
export async function ensureImage(
  engine: DockerEngine,
  component: ImageComponent,
  progress: Progress,
  options: { force?: boolean } = {},
): Promise<ImageStatus> {
  const ctx = await imageContext(component);
  const ref = imageRef(component);
  const before = await engine.imageInfo(ref);
  const built: ImageStatus = {
    component,
    ref,
    present: true,
    current: true,
    version: clientVersion(),
    contextHash: ctx.hash,
  };
  if (options.force !== true && before?.labels[LABEL_CONTEXT_HASH] === ctx.hash) return built;
  const staged: ContextSource[] = [];
  if (ctx.packages.length > 0) {
    staged.push(...stagedPackages(await stageProductionDeps(ctx.root, progress), ctx.packages));
  }
  if (recipes[component].netstack) {
    const vendor = await stageGoVendor(join(ctx.root, 'netstack'), progress);
    if (vendor !== undefined) staged.push({ dir: vendor, paths: ['vendor'], prefix: 'netstack' });
  }
  const files = [...ctx.files, ...collectFiles(staged)];
  const step = progress.step(`Building ${ref}`);
  try {
    await engine.buildImage(
      contextTar(files),
      {
        tag: ref,
        dockerfile: recipes[component].dockerfile,
        labels: tpLabels(clientVersion(), component, { [LABEL_CONTEXT_HASH]: ctx.hash }),
        buildArgs: { TP_VERSION: clientVersion() },
      },
      (line) => {
        // Layer ids and intermediate containers mean nothing to a user; steps and output do.
        if (!/^(--->|Removing intermediate container)/.test(line)) step.update(line);
      },
    );
  } catch (err) {
    step.fail();
    throw err;
  }
  step.succeed();
  return built;
}
