/*
 * publish-guard: a ServiceNow business rule telling the relay that a record changed, so the
 * relay's policy can decide whether to re-publish the week's Genesys schedule.
 *
 * Install (README, "Wiring ServiceNow to the relay"):
 *   System Definition > Business Rules > New
 *     Table:     the table whose changes matter, e.g. Case [sn_customerservice_case]
 *     Advanced:  checked
 *     When:      async, with Insert and Update checked
 *     Condition: the changes that matter, e.g. Assignment group changes
 *     Script:    this file
 *
 * The request follows the Standard Webhooks scheme (https://www.standardwebhooks.com):
 *   webhook-id         one id per change of the record; a resend of the same change repeats it,
 *                      and the relay answers it with the first receipt instead of storing it again
 *   webhook-timestamp  Unix seconds; the relay refuses one more than 5 minutes off its clock
 *   webhook-signature  "v1," + base64 HMAC-SHA256 of "id.timestamp.body" under the shared secret
 *
 * It runs async so that the user's save never waits on the network; it reads only `current`
 * (`previous` is null in async rules).
 */
(function executeRule(current, previous /* null when async */) {
    // Both in system properties, not here: the script travels between instances in update
    // sets, and each instance has its own relay and its own secret.
    var endpoint = gs.getProperty('publish_guard.endpoint'); // https://relay.example.com/webhooks/servicenow
    var secret = gs.getProperty('publish_guard.webhook_secret'); // whsec_<base64 key>
    var PREFIX = 'whsec_';
    if (!endpoint || !secret || secret.indexOf(PREFIX) !== 0) {
        gs.error('publish-guard: set publish_guard.endpoint and publish_guard.webhook_secret (whsec_...)');
        return;
    }

    // sys_mod_count grows by one with every update: with the sys_id it names this change.
    var updates = parseInt(current.getValue('sys_mod_count'), 10) || 0;
    var table = current.getTableName();
    var id = 'sn-' + table + '-' + current.getValue('sys_id') + '-' + updates;

    // The body (tests/servicenow.rs checks that tests/fixtures/servicenow-webhook.json carries
    // exactly these fields). The relay's default ServiceNow mapping reads "event"; the rest
    // names the record for anyone reading the sender's side. Only ids: no free text, so no
    // personal data leaves the instance and the signed text is plain ASCII. Nothing in it
    // changes when the same change is sent again, so a resend is a repeat, not a conflict.
    var body = JSON.stringify({
        event: updates === 0 ? 'case.created' : 'case.updated',
        table: table,
        sys_id: current.getValue('sys_id'),
        number: current.getValue('number')
    });

    var timestamp = String(Math.floor(new GlideDateTime().getNumericValue() / 1000));

    // generateMac wants the key base64-encoded: that is exactly the part after "whsec_".
    // (Encoding the whole "whsec_..." text again signs with the wrong key: the relay answers 401.)
    // In a scoped application, use `new CertificateEncryption()` instead.
    var key = secret.substring(PREFIX.length);
    var mac = new GlideCertificateEncryption().generateMac(key, 'HmacSHA256', id + '.' + timestamp + '.' + body);

    var request = new sn_ws.RESTMessageV2();
    request.setEndpoint(endpoint);
    request.setHttpMethod('post');
    request.setHttpTimeout(10000); // milliseconds
    request.setRequestHeader('Content-Type', 'application/json');
    request.setRequestHeader('webhook-id', id);
    request.setRequestHeader('webhook-timestamp', timestamp);
    request.setRequestHeader('webhook-signature', 'v1,' + mac);
    request.setRequestBody(body);
    try {
        var response = request.execute();
        var status = response.getStatusCode();
        // 202: stored, the relay takes it from here. 200: the relay already had this change.
        if (status != 202 && status != 200) {
            // A 4xx body is an RFC 9457 problem saying what was wrong (signature, clock, JSON).
            gs.error('publish-guard: webhook ' + id + ' answered ' + status + ': ' +
                (response.haveError() ? response.getErrorMessage() : response.getBody()));
        }
    } catch (e) {
        gs.error('publish-guard: webhook ' + id + ' not sent: ' + e);
    }
})(current, previous);
