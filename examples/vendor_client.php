<?php
// The vendor's PHP client for /api/cdr, as its reference page gives it: the same $params,
// the same md5(http_build_query(...)) hash, the same form body sent with
// "Content-Type: text/xml", and the page loop the page describes. Only the URL, token and
// key come from the environment so it can run against any server.
//
//   CDRAPI_URL=http://127.0.0.1:8080/api/cdr CDRAPI_API_TOKEN=... php examples/vendor_client.php
//
// Prints one line per record: id, uniqueid, time.

$url = getenv('CDRAPI_URL') ?: 'https://[YOUR-PBX-URL]/api/cdr';
$token = getenv('CDRAPI_API_TOKEN') ?: 'your_api_token';
$api_key = getenv('CDRAPI_API_KEY') ?: 'your_api_key';

function curlPost($url, $data, $headers = array())
{
    $ch = curl_init($url);
    curl_setopt($ch, CURLOPT_POST, true);
    curl_setopt($ch, CURLOPT_POSTFIELDS, $data);
    curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);
    curl_setopt($ch, CURLOPT_HTTPHEADER, array_merge(array('Content-Type: text/xml'), $headers));
    $response = curl_exec($ch);
    if ($response === false) {
        fwrite(STDERR, 'curl error: ' . curl_error($ch) . "\n");
        exit(2);
    }
    curl_close($ch);
    return $response;
}

$params = array(
    'page' => 1,
    'filters' => array(
        'date_between' => array('2024-01-01 00:00:00', '2024-01-15 23:59:59'), // array(from, to)
        'project_id' => null,
        'user_id' => null, // Users IDs
        'inbound_route_id' => null, // array(1,2,3,4) Inbound Routes IDs
        'direction' => null, // IN, OUT
        'call_status' => null, // NO ANSWER, CONGESTION, FAILED, BUSY, ANSWERED
        'telephone_like' => null, // Wildcard search for source OR destination
        'telephone' => null, // Exact search for source OR destination
        'source' => null, // Wildcard search for source
        'destination' => null, // Wildcard search for destination
        'hour_between' => null, // array(from, to)
        'from_id' => null, // >= id
        'uniqueid' => null,
        'linkedid' => null,
        'has_transcription' => null,
        'has_monitor_file' => null,
        'has_recording_file' => null,
        'external_id' => null,
    )
);

do {
    unset($params['api_hash']);
    $params['api_hash'] = md5(http_build_query($params) . $api_key); // make hash
    $response = json_decode(curlPost($url, http_build_query($params), array("Authorization: Bearer {$token}")), true);
    if (!is_array($response) || $response['has_error']) {
        fwrite(STDERR, 'API error: ' . json_encode($response) . "\n");
        exit(1);
    }
    foreach ($response['results'] as $record) {
        echo $record['id'], "\t", $record['uniqueid'], "\t", $record['time'], "\n";
    }
    $params['page']++;
} while ($params['page'] <= $response['pagination']['max_page']);
