// Runs publish-guard-webhook.js outside ServiceNow (Node 18+), with stand-ins for the Glide
// APIs it calls, so the script can be tried against `publish-guard serve --demo` before it is
// installed. The stand-in for GlideCertificateEncryption.generateMac does what ServiceNow
// documents: HMAC with the base64-decoded key, answered in base64.
//
//   node run-locally.js URL whsec_SECRET            send the request, print the answer
//   node run-locally.js URL whsec_SECRET --print    print the request instead (as JSON)
//   options: --at UNIX_SECONDS (the clock), --updates N (the record's sys_mod_count)
//
// tests/fixtures/servicenow-request.json is this script's --print output (see tests/servicenow.rs).
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const vm = require('vm');

const [endpoint, secret, ...rest] = process.argv.slice(2);
if (!endpoint || !secret) {
    console.error('usage: node run-locally.js URL whsec_SECRET [--print] [--at SECONDS] [--updates N]');
    process.exit(2);
}
const option = (name, fallback) => {
    const at = rest.indexOf(name);
    return at >= 0 && at + 1 < rest.length ? rest[at + 1] : fallback;
};
const nowMillis = Number(option('--at', Date.now() / 1000)) * 1000;
const updates = option('--updates', '1');

const sent = [];
const sandbox = {
    gs: {
        getProperty: (name) => ({
            'publish_guard.endpoint': endpoint,
            'publish_guard.webhook_secret': secret,
        })[name],
        error: (message) => console.error(message),
    },
    GlideDateTime: function () {
        this.getNumericValue = () => nowMillis;
    },
    GlideCertificateEncryption: function () {
        this.generateMac = (key, algorithm, data) => {
            if (algorithm !== 'HmacSHA256') throw new Error('unexpected algorithm ' + algorithm);
            return crypto.createHmac('sha256', Buffer.from(key, 'base64')).update(data, 'utf8').digest('base64');
        };
    },
    sn_ws: {
        RESTMessageV2: function () {
            const request = { headers: {} };
            this.setEndpoint = (url) => { request.endpoint = url; };
            this.setHttpMethod = (method) => { request.method = method.toUpperCase(); };
            this.setHttpTimeout = () => {};
            this.setRequestHeader = (name, value) => { request.headers[name] = value; };
            this.setRequestBody = (body) => { request.body = body; };
            // The request is sent after the rule returns: Node cannot block on the network.
            this.execute = () => {
                sent.push(request);
                return { getStatusCode: () => 202, haveError: () => false, getBody: () => '' };
            };
        },
    },
    current: {
        getTableName: () => 'sn_customerservice_case',
        getValue: (field) => ({
            sys_id: '46d44a5dc0a8010e0135cda3a8bdf2b7',
            number: 'CS0001042',
            sys_mod_count: updates,
        })[field],
    },
    previous: null,
};
const rule = fs.readFileSync(path.join(__dirname, 'publish-guard-webhook.js'), 'utf8');
vm.runInNewContext(rule, sandbox);

const request = sent[0];
if (!request) process.exit(1);
if (rest.includes('--print')) {
    console.log(JSON.stringify(request, null, 2));
} else {
    fetch(request.endpoint, { method: request.method, headers: request.headers, body: request.body })
        .then(async (answer) => console.log(answer.status, await answer.text()))
        .catch((e) => { console.error(String(e)); process.exit(1); });
}
