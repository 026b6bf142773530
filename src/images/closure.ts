import { existsSync, readFileSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { join, posix } from 'node:path';
import { init, parse } from 'es-module-lexer';
import { TpError } from '../lib/errors.js';

export interface ModuleClosure {
  /** Every module the entry reaches, itself included: paths under the root, sorted. */
  files: string[];
  /** The npm packages those modules import, by name, sorted. */
  packages: string[];
}

/**
 * The modules an entry point can load, found by following its imports: what a program runs,
 * so what its image must hold. Only what can be known without running the code counts; an
 * import that cannot (a computed `import(x)`) is an error rather than a file silently missing
 * from the image.
 *
 * `entry` and the returned files are relative to `root`, with forward slashes.
 */
export async function moduleClosure(root: string, entry: string): Promise<ModuleClosure> {
  await init();
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending: { file: string; from?: string }[] = [{ file: entry }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { file, from } = next;
    if (files.has(file)) continue;
    if (!isFile(join(root, file))) throw missingModule(root, file, from);
    files.add(file);
    // A JSON module (import attributes) imports nothing.
    if (!/\.[cm]?js$/.test(file)) continue;
    for (const spec of specifiers(root, file)) {
      if (isBuiltin(spec)) continue;
      if (spec.startsWith('./') || spec.startsWith('../')) {
        pending.push({
          file: inside(root, file, posix.join(posix.dirname(file), spec)),
          from: file,
        });
      } else {
        packages.add(packageName(root, file, spec));
      }
    }
  }
  return { files: [...files].sort(), packages: [...packages].sort() };
}

function specifiers(root: string, file: string): string[] {
  const source = readFileSync(join(root, file), 'utf8');
  let imports;
  try {
    [imports] = parse(source, file);
  } catch (err) {
    throw unresolvable(root, file, `it does not parse as a module`, err);
  }
  const found: string[] = [];
  for (const imp of imports) {
    if (imp.type === 'import-meta') continue;
    if (imp.type === 'dynamic' && (imp.specifier === undefined || imp.glob)) {
      const expr = source.slice(imp.importStart, imp.importEnd);
      throw unresolvable(root, file, `\`${expr}\` names its module only at run time`);
    }
    if (imp.specifier !== undefined) found.push(imp.specifier);
  }
  return found;
}

/** The package a bare specifier loads: `a` of `a/sub`, `@s/a` of `@s/a/sub`. */
function packageName(root: string, file: string, spec: string): string {
  const parts = spec.split('/');
  const name = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  // `#internal` maps and absolute or URL specifiers would need resolution rules tp does not use.
  if (name === undefined || !/^(@[^/@#:.][^/]*\/)?[^/@#:.][^/:]*$/.test(name)) {
    throw unresolvable(root, file, `the specifier '${spec}' is not a package name`);
  }
  return name;
}

function inside(root: string, from: string, target: string): string {
  if (target === '..' || target.startsWith('../')) {
    throw unresolvable(root, from, `'${target}' is outside ${root}`);
  }
  return target;
}

function isFile(path: string): boolean {
  return existsSync(path) && statSync(path).isFile();
}

function unresolvable(root: string, file: string, why: string, cause?: unknown): TpError {
  return new TpError('internal', `Cannot tell which files ${join(root, file)} loads: ${why}.`, {
    code: 'IMAGE_IMPORT_UNRESOLVABLE',
    fix: "Images hold only the modules their entry point imports: use a static import or a literal `import('./path.js')`.",
    cause,
  });
}

function missingModule(root: string, file: string, from: string | undefined): TpError {
  const by = from === undefined ? '' : ` (imported by ${from})`;
  return new TpError('config', `${join(root, file)} is missing${by}.`, {
    code: 'IMAGE_CONTEXT_MISSING',
    fix: 'Build tp first (`npm run build`), or reinstall it.',
  });
}
