import { InvalidArgumentError, Option, type Command } from 'commander';
import type { OptionSpec, OptionTable, ValueType } from '../runs/options.ts';

/** A Commander argument parser for a value type: a bad value is one sentence, exit code 2. */
export function parser<T>(type: ValueType<T>): (text: string) => T {
  return (text) => {
    const value = type.parse(text);
    if (value === undefined) throw new InvalidArgumentError(`Expected ${type.describe}.`);
    return value;
  };
}

/** The Commander option of a declared training option, with its default (none where it is null). */
function commanderOption<T>(spec: OptionSpec<T>, defaultValue: T): Option {
  const option = new Option(spec.flag, spec.help);
  if (spec.type.choices) option.choices(spec.type.choices);
  else if (option.required) option.argParser(parser(spec.type));
  if (defaultValue !== null && defaultValue !== undefined) option.default(defaultValue);
  return option;
}

/**
 * Adds a flag for every option of the table, each with its default from `defaults`; a switch
 * that is on by default (`--batch-norm`) also gets its `--no-` form, which turns it off.
 */
export function addConfigOptions<C>(command: Command, table: OptionTable<C>, defaults: Readonly<C>): Command {
  for (const key of Object.keys(table) as (keyof C)[]) {
    const spec = table[key];
    command.addOption(commanderOption(spec, defaults[key]));
    if (defaults[key] === true) command.addOption(new Option(spec.flag.replace(/^--/, '--no-'), `turn ${spec.flag} off`));
  }
  return command;
}

/** The configuration the parsed flags give: each field from its option's flag; an absent nullable one is null. */
export function configFromFlags<C>(table: OptionTable<C>, flags: Record<string, unknown>): C {
  const config: Partial<Record<keyof C, unknown>> = {};
  for (const key of Object.keys(table) as (keyof C)[]) {
    const attribute = new Option(table[key].flag).attributeName();
    config[key] = flags[attribute] ?? null;
  }
  return config as C;
}
