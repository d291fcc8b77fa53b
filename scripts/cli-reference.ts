/**
 * Writes docs/cli.md from the CLI itself: every command's --help, so the reference cannot drift
 * from the flags (test/cli-reference.test.ts checks that the file is current).
 * Run: npm run docs:cli
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/main.ts';

const INTRO = `# CLI reference

This file is written by \`npm run docs:cli\` from the commands' \`--help\`; each command's
\`--help\` shows the same.

After \`npm ci\` the CLI is \`npx fmnist\` (or \`npm run fmnist --\`, or \`node dist/cli/main.js\`);
\`npm start\` is \`fmnist pipeline\`, and \`npm start -- <flags>\` passes flags to it.

- A bad value (negative, not a number, unknown choice) or an unknown flag is a one-line error
  with exit code 2; a problem with the data or a model folder is a one-line error with exit
  code 1. Every file is written under a temporary name and renamed into place.
- Progress goes to standard error: a bar with ETA in a terminal, plain lines every 10 seconds
  and after each epoch otherwise (logs, CI). Results go to standard output.
- Run folders default to \`runs/<kind>-<date>-<time>\` (UTC); what they hold is in
  [run-folder.md](run-folder.md). Where the data is looked for: [data.md](data.md).
`;

/** Every command with its full name, depth first: the leaves, and a command with subcommands that also runs itself (takes arguments, like `fmnist search <model>`). */
function commands(command: Command, prefix: string): { name: string; command: Command }[] {
  return command.commands.flatMap((sub) => {
    const name = `${prefix} ${sub.name()}`;
    const runs = sub.commands.length === 0 || sub.registeredArguments.length > 0;
    return [...(runs ? [{ name, command: sub }] : []), ...commands(sub, name)];
  });
}

export async function cliReference(): Promise<string> {
  const program = await buildProgram();
  program.configureHelp({ helpWidth: 100 });
  const sections = commands(program, 'fmnist').map(({ name, command }) => {
    command.configureHelp({ helpWidth: 100 });
    return `## ${name}\n\n\`\`\`text\n${command.helpInformation().trimEnd()}\n\`\`\`\n`;
  });
  const contents = commands(program, 'fmnist')
    .map(({ name }) => `[\`${name}\`](#${name.replace(/ /g, '-')})`)
    .join(', ');
  return `${INTRO}\nCommands: ${contents}.\n\n${sections.join('\n')}`;
}

if (process.argv[1]?.endsWith('cli-reference.ts')) {
  writeFileSync('docs/cli.md', await cliReference());
  console.log('cli-reference: wrote docs/cli.md');
}
