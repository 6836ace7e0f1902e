// Validates JSON documents against a JSON Schema with Ajv and ajv-formats.
//   node validate.js SCHEMA FILE...          each FILE is one JSON document
//   node validate.js --lines SCHEMA FILE...  each non-empty line of each FILE is one document (JSONL)
//   --ref OTHER_SCHEMA (repeatable, first) loads a schema that SCHEMA refers to by its $id.
// The Ajv flavour follows the schema's "$schema": draft-04 (the OASIS SARIF 2.1.0 schema) uses
// ajv-draft-04, draft-07 uses Ajv's default class, 2020-12 uses ajv/dist/2020.
// Prints "valid: FILE (N documents)" or every error, and exits 1 when any document is invalid.
'use strict';
const fs = require('fs');
const addFormats = require('ajv-formats');

function makeAjv(schema) {
  const dialect = String(schema.$schema || '');
  // Strict mode catches mistakes in our own schemas; the OASIS schema is taken as published.
  const options = { allErrors: true, strict: !dialect.includes('draft-04') };
  let Ajv;
  if (dialect.includes('draft-04')) Ajv = require('ajv-draft-04');
  else if (dialect.includes('2020-12')) Ajv = require('ajv/dist/2020');
  else if (dialect.includes('draft-07')) Ajv = require('ajv');
  else throw new Error(`unsupported $schema ${JSON.stringify(dialect)}`);
  const ajv = new Ajv(options);
  addFormats(ajv);
  return ajv;
}

function main(argv) {
  let lines = false;
  const refs = [];
  for (;;) {
    if (argv[0] === '--lines') {
      lines = true;
      argv = argv.slice(1);
    } else if (argv[0] === '--ref' && argv.length > 1) {
      refs.push(JSON.parse(fs.readFileSync(argv[1], 'utf8')));
      argv = argv.slice(2);
    } else {
      break;
    }
  }
  if (argv.length < 2) {
    console.error('usage: node validate.js [--lines] [--ref OTHER_SCHEMA]... SCHEMA FILE...');
    return 2;
  }
  const schema = JSON.parse(fs.readFileSync(argv[0], 'utf8'));
  const ajv = makeAjv(schema);
  for (const ref of refs) ajv.addSchema(ref);
  const validate = ajv.compile(schema);
  let bad = 0;
  for (const file of argv.slice(1)) {
    const text = fs.readFileSync(file, 'utf8');
    const docs = lines ? text.split('\n').filter((l) => l.trim() !== '') : [text];
    let n = 0;
    let fileBad = 0;
    for (const doc of docs) {
      ++n;
      let value;
      try {
        value = JSON.parse(doc);
      } catch (e) {
        console.log(`invalid: ${file}${lines ? `:${n}` : ''}: not JSON: ${e.message}`);
        ++fileBad;
        continue;
      }
      if (!validate(value)) {
        ++fileBad;
        for (const err of validate.errors.slice(0, 20)) {
          console.log(`invalid: ${file}${lines ? `:${n}` : ''}: ${err.instancePath || '/'} ${err.message} ${JSON.stringify(err.params)}`);
        }
      }
    }
    if (fileBad === 0) console.log(`valid: ${file} (${n} document${n === 1 ? '' : 's'})`);
    bad += fileBad;
  }
  return bad === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));
