/**
 * Writes docs/api/, the library's reference, from the TSDoc comments of src/index.ts and of what
 * it exports, with TypeDoc and its Markdown plugin; test/api-reference.test.ts checks that the
 * folder is current. The types that exported functions take or return without being exported
 * by name (their option objects, mostly) are documented too, on a page of their own
 * (typedoc-plugin-missing-exports), so that every option a function takes is described.
 * Run: npm run docs:api
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Application, type TypeDocOptions } from 'typedoc';
import type { PluginOptions } from 'typedoc-plugin-markdown';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const API_DIR = join(ROOT, 'docs', 'api');
/** The page that exported functions link to for the types they use but do not export. */
const OTHER_TYPES = 'types-not-exported';

const INTRO = `This reference is written by \`npm run docs:api\` from the doc comments of
[src/index.ts](../../src/index.ts), the package's one entry point, and of what it exports
(TypeDoc). Import every name below from \`fashion-mnist-ts\`; the types on
[${OTHER_TYPES}](${OTHER_TYPES}.md) are those the exports take or return without exporting them by
name. The README's [library section](../../README.md#using-it-as-a-library) shows them at work.
`;

// TypeDoc's, its Markdown plugin's, and internalModule, typedoc-plugin-missing-exports's (untyped).
const OPTIONS: Partial<TypeDocOptions & PluginOptions> & { internalModule: string } = {
  entryPoints: [join(ROOT, 'src', 'index.ts')],
  tsconfig: join(ROOT, 'tsconfig.build.json'),
  plugin: ['typedoc-plugin-markdown', 'typedoc-plugin-missing-exports'],
  internalModule: OTHER_TYPES,
  readme: 'none',
  // No source links: they would name line numbers (and a commit), and change with every edit.
  disableSources: true,
  excludeExternals: true,
  excludePrivate: true,
  treatWarningsAsErrors: true,
  logLevel: 'Warn',
  outputFileStrategy: 'modules',
  hidePageHeader: true,
  hideBreadcrumbs: true,
  parametersFormat: 'table',
  interfacePropertiesFormat: 'table',
  classPropertiesFormat: 'table',
  typeDeclarationFormat: 'table',
};

/** Renders the reference into `outDir` (emptied first); returns its files by name. */
export async function writeApiReference(outDir: string): Promise<Map<string, string>> {
  const app = await Application.bootstrapWithPlugins({ ...OPTIONS, out: outDir });
  const project = await app.convert();
  if (!project || app.logger.hasErrors() || app.logger.hasWarnings()) throw new Error('api-reference: TypeDoc could not read src/index.ts (see above)');
  await app.generateOutputs(project);
  if (app.logger.hasErrors() || app.logger.hasWarnings()) throw new Error('api-reference: TypeDoc reported problems (see above)');
  const index = join(outDir, 'README.md');
  writeFileSync(index, readFileSync(index, 'utf8').replace(/^(# .*\n)/, `$1\n${INTRO}`));
  return new Map(readdirSync(outDir).map((name) => [name, readFileSync(join(outDir, name), 'utf8')]));
}

/** The reference as it would be written now, rendered in a temporary folder. */
export async function apiReference(): Promise<Map<string, string>> {
  const dir = mkdtempSync(join(tmpdir(), 'fmnist-api-'));
  try {
    return await writeApiReference(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('api-reference.ts')) {
  const files = await writeApiReference(API_DIR);
  console.log(`api-reference: wrote docs/api/ (${[...files.keys()].join(', ')})`);
}
