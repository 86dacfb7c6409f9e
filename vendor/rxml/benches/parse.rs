use criterion::{black_box, criterion_group, criterion_main, Criterion};

use rxml::{Parse, Parser, Reader};

static HUGE_STANZA: &'static [u8] =  br#"<iq to='loadtest0@conference.example.com/63653b5f'
id='b3JhE-1363385' type='set'><jingle xmlns='urn:xmpp:jingle:1' action='session-initiate'
initiator='focus@auth.example.com/focus' sid='4u19jj866r22g'><content creator='initiator'
name='audio' senders='both'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'
maxptime='60'><payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' id='111' name='opus'
clockrate='48000' channels='2'><parameter name='minptime' value='10'/><parameter
name='useinbandfec' value='1'/><rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0'
type='transport-cc'/></payload-type><payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' id='103'
name='ISAC' clockrate='16000'/><payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' id='104'
name='ISAC' clockrate='32000'/><payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' id='126'
name='telephone-event' clockrate='8000'/><rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0'
id='1' uri='urn:ietf:params:rtp-hdrext:ssrc-audio-level'/><rtp-hdrext
xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='5'
uri='http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01'/><rtcp-mux/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2650722827'><parameter name='cname'
value='mixed'/><parameter name='label' value='mixedlabelaudio0'/><parameter name='msid'
value='mixedmslabel mixedlabelaudio0'/><parameter name='mslabel' value='mixedmslabel'/><ssrc-info
xmlns='http://jitsi.org/jitmeet' owner='jvb'/></source></description><transport
xmlns='urn:xmpp:jingle:transports:ice-udp:1' pwd='f667da89d0froosolnkd29rfr'
ufrag='210bltna1fdanrtsu'><web-socket xmlns='http://jitsi.org/protocol/colibri'
url='wss://example-com-us-west-2b-s7-jvb-74-72-210.example.com:443/colibri-ws/default-id/255b0900f17cdd9e/63653b5f?pwd=f667da89d0froosolnkd29rfr'/><rtcp-mux/><fingerprint
xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' required='false'
setup='actpass'>AE:D4:A8:99:38:9A:9A:D7:63:7E:CE:12:A9:90:B1:49:3D:C9:3C:E0:DF:66:87:D6:76:B7:7A:68:85:B4:BF:BE</fingerprint><candidate
xmlns='urn:xmpp:jingle:transports:ice-udp:1' network='0' id='71b70c8b5a5117d9024a1280e'
protocol='udp' component='1' priority='2130706431' port='10000' ip='10.74.72.210' type='host'
generation='0' foundation='1'/><candidate xmlns='urn:xmpp:jingle:transports:ice-udp:1' network='0'
id='2057cc035a5117d90ffffffff9be9a78b' protocol='udp' component='1' priority='1694498815'
port='10000' ip='129.146.200.79' type='srflx' rel-port='10000' foundation='2' generation='0'
rel-addr='10.74.72.210'/></transport></content><content creator='initiator' name='video'
senders='both'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'><payload-type
xmlns='urn:xmpp:jingle:apps:rtp:1' id='100' name='VP8' clockrate='90000'><rtcp-fb
xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='ccm' subtype='fir'/><rtcp-fb
xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='nack'/><rtcp-fb
xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='nack' subtype='pli'/><parameter
name='x-google-start-bitrate' value='800'/><rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0'
type='transport-cc'/></payload-type><payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' id='96'
name='rtx' clockrate='90000'><parameter name='apt' value='100'/><rtcp-fb
xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='ccm' subtype='fir'/><rtcp-fb
xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='nack'/><rtcp-fb
xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='nack' subtype='pli'/></payload-type><rtp-hdrext
xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='3'
uri='http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time'/><rtp-hdrext
xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='5'
uri='http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01'/><rtcp-mux/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3685455910'><parameter name='cname'
value='mixed'/><parameter name='label' value='mixedlabelvideo0'/><parameter name='msid'
value='mixedmslabel mixedlabelvideo0'/><parameter name='mslabel' value='mixedmslabel'/><ssrc-info
xmlns='http://jitsi.org/jitmeet' owner='jvb'/></source><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3061637266'><ssrc-info
xmlns='http://jitsi.org/jitmeet' owner='loadtest0@conference.example.com/2b13ffef'/><parameter
name='msid' value='2b13ffef-video-1 2779da2b-d39c-4aa9-a141-0e36a35b4134-1'/><parameter
name='cname' value='eFOouIjXUtw0IzOV-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2334295712'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2b13ffef'/><parameter name='msid' value='2b13ffef-video-1
2779da2b-d39c-4aa9-a141-0e36a35b4134-1'/><parameter name='cname'
value='eFOouIjXUtw0IzOV-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2449273099'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/371f533a'/><parameter name='msid' value='371f533a-video-1
297a94bd-1058-4643-9134-f893cdbdd233-1'/><parameter name='cname'
value='QS5ylS67FPlMdapO-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1898950798'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/371f533a'/><parameter name='msid' value='371f533a-video-1
297a94bd-1058-4643-9134-f893cdbdd233-1'/><parameter name='cname'
value='QS5ylS67FPlMdapO-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='866214649'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/73e682eb'/><parameter name='msid' value='73e682eb-video-1
49d32060-1dfb-4f2f-a3fa-8d0210a73c03-1'/><parameter name='cname'
value='TQ8mHYPdNvRUCxM5-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='388396566'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/73e682eb'/><parameter name='msid' value='73e682eb-video-1
49d32060-1dfb-4f2f-a3fa-8d0210a73c03-1'/><parameter name='cname'
value='TQ8mHYPdNvRUCxM5-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='923496315'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/5526ba3e'/><parameter name='msid' value='5526ba3e-video-1
fe628e6a-ab27-4d5b-a92d-1ec699f19f6c-1'/><parameter name='cname'
value='YfHXdWcN3vALe-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2531188077'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/5526ba3e'/><parameter name='msid' value='5526ba3e-video-1
fe628e6a-ab27-4d5b-a92d-1ec699f19f6c-1'/><parameter name='cname'
value='YfHXdWcN3vALe-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4161484420'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ce0153bb'/><parameter name='msid' value='ce0153bb-video-1
7d3b5720-11e5-4181-aae6-e3d95cbc50da-1'/><parameter name='cname'
value='bpQrtM7VQYBqp3E7-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2760369944'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ce0153bb'/><parameter name='msid' value='ce0153bb-video-1
7d3b5720-11e5-4181-aae6-e3d95cbc50da-1'/><parameter name='cname'
value='bpQrtM7VQYBqp3E7-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2672591233'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/772f34f2'/><parameter name='msid' value='772f34f2-video-1
197ce36e-6c8a-48cc-8cb9-ceef591bea7c-1'/><parameter name='cname'
value='HnpKy9JnbwKiUZO-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3960713133'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/772f34f2'/><parameter name='msid' value='772f34f2-video-1
197ce36e-6c8a-48cc-8cb9-ceef591bea7c-1'/><parameter name='cname'
value='HnpKy9JnbwKiUZO-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2461655640'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/1695fc30'/><parameter name='msid' value='1695fc30-video-1
dd601099-cd05-4d85-9897-87866d2664fb-1'/><parameter name='cname'
value='fxfuFeIQHAHeWAe7-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2852028166'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/1695fc30'/><parameter name='msid' value='1695fc30-video-1
dd601099-cd05-4d85-9897-87866d2664fb-1'/><parameter name='cname'
value='fxfuFeIQHAHeWAe7-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1767345327'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/4d9b3e8a'/><parameter name='msid' value='4d9b3e8a-video-1
6535c3ff-e4ad-4c38-b429-999d97dfeee7-1'/><parameter name='cname'
value='l66Mvdm5DYqcoN-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='501735278'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/4d9b3e8a'/><parameter name='msid' value='4d9b3e8a-video-1
6535c3ff-e4ad-4c38-b429-999d97dfeee7-1'/><parameter name='cname'
value='l66Mvdm5DYqcoN-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3059770944'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8ca5f1f8'/><parameter name='msid' value='8ca5f1f8-video-1
ca3be214-f2af-45fe-9f9a-cdd19ea56a28-1'/><parameter name='cname'
value='73tC9kC0sKhG488f-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1517306582'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8ca5f1f8'/><parameter name='msid' value='8ca5f1f8-video-1
ca3be214-f2af-45fe-9f9a-cdd19ea56a28-1'/><parameter name='cname'
value='73tC9kC0sKhG488f-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4019240166'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/52f502d0'/><parameter name='msid' value='52f502d0-video-1
72ad1c7d-a92d-43a2-b5cb-19a0bedbc456-1'/><parameter name='cname'
value='ISkoIh0sykEBW70X-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1261846490'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/52f502d0'/><parameter name='msid' value='52f502d0-video-1
72ad1c7d-a92d-43a2-b5cb-19a0bedbc456-1'/><parameter name='cname'
value='ISkoIh0sykEBW70X-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2826415547'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/fe5e1804'/><parameter name='msid' value='fe5e1804-video-1
f941f941-0227-42b9-a397-cd512ccfdc94-1'/><parameter name='cname'
value='M5i6sLF056eqQy1w-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1650496975'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/fe5e1804'/><parameter name='msid' value='fe5e1804-video-1
f941f941-0227-42b9-a397-cd512ccfdc94-1'/><parameter name='cname'
value='M5i6sLF056eqQy1w-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4053101965'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/c123c714'/><parameter name='msid' value='c123c714-video-1
5352b180-8137-477d-a156-1e24d8436e70-1'/><parameter name='cname'
value='yjnHbYwakkUiwhd-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1371049993'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/c123c714'/><parameter name='msid' value='c123c714-video-1
5352b180-8137-477d-a156-1e24d8436e70-1'/><parameter name='cname'
value='yjnHbYwakkUiwhd-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2877754998'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/1eedc112'/><parameter name='msid' value='1eedc112-video-1
5c1aaff7-b5fd-4be2-854a-5eed97217077-1'/><parameter name='cname'
value='ZsannyS2xZ1gUSWn-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1205498400'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/1eedc112'/><parameter name='msid' value='1eedc112-video-1
5c1aaff7-b5fd-4be2-854a-5eed97217077-1'/><parameter name='cname'
value='ZsannyS2xZ1gUSWn-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='833492476'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/d637b5dd'/><parameter name='msid' value='d637b5dd-video-1
842b8d3a-0c07-4608-ad44-7d88237c4848-1'/><parameter name='cname'
value='8I2DLxJwbeK7edO-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='593900983'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/d637b5dd'/><parameter name='msid' value='d637b5dd-video-1
842b8d3a-0c07-4608-ad44-7d88237c4848-1'/><parameter name='cname'
value='8I2DLxJwbeK7edO-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='306405540'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/86ace1bd'/><parameter name='msid' value='86ace1bd-video-1
817b9abe-fa89-46b8-9ff1-6ac02f5c2691-1'/><parameter name='cname'
value='Q1UQvUAVW1sY6z-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3033351177'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/86ace1bd'/><parameter name='msid' value='86ace1bd-video-1
817b9abe-fa89-46b8-9ff1-6ac02f5c2691-1'/><parameter name='cname'
value='Q1UQvUAVW1sY6z-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4061349084'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8349eda6'/><parameter name='msid' value='8349eda6-video-1
67b48a17-a27e-48d2-b965-8dd7f2228588-1'/><parameter name='cname'
value='fEES1cGPJrzAHQO1-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='48958389'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8349eda6'/><parameter name='msid' value='8349eda6-video-1
67b48a17-a27e-48d2-b965-8dd7f2228588-1'/><parameter name='cname'
value='fEES1cGPJrzAHQO1-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='676846785'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9f727d89'/><parameter name='msid' value='9f727d89-video-1
0454eedd-cc7d-4c4b-8f56-cda6ed894d6e-1'/><parameter name='cname'
value='kLzFiWJxnhgk3-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1281857133'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9f727d89'/><parameter name='msid' value='9f727d89-video-1
0454eedd-cc7d-4c4b-8f56-cda6ed894d6e-1'/><parameter name='cname'
value='kLzFiWJxnhgk3-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2727820600'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9f216740'/><parameter name='msid' value='9f216740-video-1
bacc5419-4eb5-4fb2-be15-c3449a521356-1'/><parameter name='cname'
value='X5058BQwjLdud18I-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4092026770'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9f216740'/><parameter name='msid' value='9f216740-video-1
bacc5419-4eb5-4fb2-be15-c3449a521356-1'/><parameter name='cname'
value='X5058BQwjLdud18I-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3101806842'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/45a0276e'/><parameter name='msid' value='45a0276e-video-1
6bb068a3-d07e-427c-a865-67a5ada9e86a-1'/><parameter name='cname'
value='e9g0uN9gcLdYUpCZ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2114803266'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/45a0276e'/><parameter name='msid' value='45a0276e-video-1
6bb068a3-d07e-427c-a865-67a5ada9e86a-1'/><parameter name='cname'
value='e9g0uN9gcLdYUpCZ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1992363352'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/37e4b01c'/><parameter name='msid' value='37e4b01c-video-1
3684c2f8-abb3-457d-95de-1e69921cdc1e-1'/><parameter name='cname'
value='9Ydf3sUO87ZUP1u-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1647971405'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/37e4b01c'/><parameter name='msid' value='37e4b01c-video-1
3684c2f8-abb3-457d-95de-1e69921cdc1e-1'/><parameter name='cname'
value='9Ydf3sUO87ZUP1u-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3595796030'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/324cc02a'/><parameter name='msid' value='324cc02a-video-1
dc773be3-b3b4-4186-a18b-a6e2a9559fab-1'/><parameter name='cname'
value='mYHtSHDmVlUI1fd-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2600691471'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/324cc02a'/><parameter name='msid' value='324cc02a-video-1
dc773be3-b3b4-4186-a18b-a6e2a9559fab-1'/><parameter name='cname'
value='mYHtSHDmVlUI1fd-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1792792996'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/cfd2d893'/><parameter name='msid' value='cfd2d893-video-1
996aa1c8-b296-4203-be60-69f4bef7ffb5-1'/><parameter name='cname'
value='sR9S00K9syQz11XH-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='993195403'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/cfd2d893'/><parameter name='msid' value='cfd2d893-video-1
996aa1c8-b296-4203-be60-69f4bef7ffb5-1'/><parameter name='cname'
value='sR9S00K9syQz11XH-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='82148077'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/7986bb0d'/><parameter name='msid' value='7986bb0d-video-1
d89790a1-ff7c-42d1-afed-04993c43dc33-1'/><parameter name='cname'
value='iXBKzwt4i8eu947H-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='657317605'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/7986bb0d'/><parameter name='msid' value='7986bb0d-video-1
d89790a1-ff7c-42d1-afed-04993c43dc33-1'/><parameter name='cname'
value='iXBKzwt4i8eu947H-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='120296323'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2a3641e8'/><parameter name='msid' value='2a3641e8-video-1
6b958b06-6609-442e-9bd4-2ff040907c76-1'/><parameter name='cname'
value='qSzSBOpwzXBtrc-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3204037080'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2a3641e8'/><parameter name='msid' value='2a3641e8-video-1
6b958b06-6609-442e-9bd4-2ff040907c76-1'/><parameter name='cname'
value='qSzSBOpwzXBtrc-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1696357701'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/925d12f5'/><parameter name='msid' value='925d12f5-video-1
e84f7da0-993a-4e54-a80d-9cdfb5c0989a-1'/><parameter name='cname'
value='VNwD9VHxUbiMfKO-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='67688246'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/925d12f5'/><parameter name='msid' value='925d12f5-video-1
e84f7da0-993a-4e54-a80d-9cdfb5c0989a-1'/><parameter name='cname'
value='VNwD9VHxUbiMfKO-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2698790147'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e1593a38'/><parameter name='msid' value='e1593a38-video-1
df8763f7-7b99-4832-9153-679fdf048dcb-1'/><parameter name='cname'
value='aQPbPy4fUWRvK8rO-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4119513018'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e1593a38'/><parameter name='msid' value='e1593a38-video-1
df8763f7-7b99-4832-9153-679fdf048dcb-1'/><parameter name='cname'
value='aQPbPy4fUWRvK8rO-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='284736749'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8486cacf'/><parameter name='msid' value='8486cacf-video-1
234fd31f-aba6-4192-a8e6-82b3885e093a-1'/><parameter name='cname'
value='hZl0ZWffQlisGZNK-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2235349421'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8486cacf'/><parameter name='msid' value='8486cacf-video-1
234fd31f-aba6-4192-a8e6-82b3885e093a-1'/><parameter name='cname'
value='hZl0ZWffQlisGZNK-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2983878818'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a60bf678'/><parameter name='msid' value='a60bf678-video-1
b7e49b85-c634-4fe6-96ae-03d20bec9679-1'/><parameter name='cname'
value='pqi1SOrHw7jpfdt-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='371229755'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a60bf678'/><parameter name='msid' value='a60bf678-video-1
b7e49b85-c634-4fe6-96ae-03d20bec9679-1'/><parameter name='cname'
value='pqi1SOrHw7jpfdt-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3861532374'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/00078516'/><parameter name='msid' value='00078516-video-1
b94c59ec-9b76-4b03-860e-67dce2c52771-1'/><parameter name='cname'
value='G0gsZrrSP8Sa55iO-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3466193822'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/00078516'/><parameter name='msid' value='00078516-video-1
b94c59ec-9b76-4b03-860e-67dce2c52771-1'/><parameter name='cname'
value='G0gsZrrSP8Sa55iO-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2549851790'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a0d72ca8'/><parameter name='msid' value='a0d72ca8-video-1
e5584425-61a0-4690-88c1-42389bd60728-1'/><parameter name='cname'
value='0U9GxV5A259YRsEG-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1744426489'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a0d72ca8'/><parameter name='msid' value='a0d72ca8-video-1
e5584425-61a0-4690-88c1-42389bd60728-1'/><parameter name='cname'
value='0U9GxV5A259YRsEG-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='917675089'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3a2da8d6'/><parameter name='msid' value='3a2da8d6-video-1
65b88969-9f21-420c-b18c-d710f7854026-1'/><parameter name='cname'
value='2qpYd36mj9dWCkSk-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2381564406'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3a2da8d6'/><parameter name='msid' value='3a2da8d6-video-1
65b88969-9f21-420c-b18c-d710f7854026-1'/><parameter name='cname'
value='2qpYd36mj9dWCkSk-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1702641816'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/606c6ea4'/><parameter name='msid' value='606c6ea4-video-1
0dd727b4-799b-48c3-ad7d-e09fabc661d2-1'/><parameter name='cname'
value='WP6Pe85abyV3io-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='562572309'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/606c6ea4'/><parameter name='msid' value='606c6ea4-video-1
0dd727b4-799b-48c3-ad7d-e09fabc661d2-1'/><parameter name='cname'
value='WP6Pe85abyV3io-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1038427283'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e1eae02a'/><parameter name='msid' value='e1eae02a-video-1
d6ebab7e-95d8-4f70-83a6-bba56be8571f-1'/><parameter name='cname'
value='GSzKt2OYuke6mIIJ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2998000941'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e1eae02a'/><parameter name='msid' value='e1eae02a-video-1
d6ebab7e-95d8-4f70-83a6-bba56be8571f-1'/><parameter name='cname'
value='GSzKt2OYuke6mIIJ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1361401156'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e3f0ccf9'/><parameter name='msid' value='e3f0ccf9-video-1
1f34a5f7-4436-407d-890b-14a19505f4c8-1'/><parameter name='cname'
value='RgeoAlfZApPnXN2v-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='394441607'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e3f0ccf9'/><parameter name='msid' value='e3f0ccf9-video-1
1f34a5f7-4436-407d-890b-14a19505f4c8-1'/><parameter name='cname'
value='RgeoAlfZApPnXN2v-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3085630869'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a3e8bbf1'/><parameter name='msid' value='a3e8bbf1-video-1
cb75c742-9b2d-4e89-a821-f8d8273bbe94-1'/><parameter name='cname'
value='VTcNBjHAVeN9tHl-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3767130458'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a3e8bbf1'/><parameter name='msid' value='a3e8bbf1-video-1
cb75c742-9b2d-4e89-a821-f8d8273bbe94-1'/><parameter name='cname'
value='VTcNBjHAVeN9tHl-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='58961431'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/cf3c0483'/><parameter name='msid' value='cf3c0483-video-1
bb3c896d-4f79-469a-8d4e-3fcc3ad04fcb-1'/><parameter name='cname'
value='UxXuzaXvVyadXZN-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='795376870'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/cf3c0483'/><parameter name='msid' value='cf3c0483-video-1
bb3c896d-4f79-469a-8d4e-3fcc3ad04fcb-1'/><parameter name='cname'
value='UxXuzaXvVyadXZN-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2893839303'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/6561800c'/><parameter name='msid' value='6561800c-video-1
a0af7834-51a7-4873-ae15-fba5867601ba-1'/><parameter name='cname'
value='mAwxAHlr5cVDFsbY-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1189114128'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/6561800c'/><parameter name='msid' value='6561800c-video-1
a0af7834-51a7-4873-ae15-fba5867601ba-1'/><parameter name='cname'
value='mAwxAHlr5cVDFsbY-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2256823801'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/4a7a2fcc'/><parameter name='msid' value='4a7a2fcc-video-1
7bb7ae33-cd53-4420-b452-5525f2aed152-1'/><parameter name='cname'
value='GWjF5SyfBXBJ8Hl8-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2084638456'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/4a7a2fcc'/><parameter name='msid' value='4a7a2fcc-video-1
7bb7ae33-cd53-4420-b452-5525f2aed152-1'/><parameter name='cname'
value='GWjF5SyfBXBJ8Hl8-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='952645665'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/d3d14c0e'/><parameter name='msid' value='d3d14c0e-video-1
8fd25d11-bceb-4cf5-ad62-41103f804f4d-1'/><parameter name='cname'
value='MH1t7SURXCZFG18r-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2850679869'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/d3d14c0e'/><parameter name='msid' value='d3d14c0e-video-1
8fd25d11-bceb-4cf5-ad62-41103f804f4d-1'/><parameter name='cname'
value='MH1t7SURXCZFG18r-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3464124200'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/cea213b2'/><parameter name='msid' value='cea213b2-video-1
8402f561-cee9-4e26-8225-4c788709a998-1'/><parameter name='cname'
value='e6d466YmH8dMOmm1-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='282197457'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/cea213b2'/><parameter name='msid' value='cea213b2-video-1
8402f561-cee9-4e26-8225-4c788709a998-1'/><parameter name='cname'
value='e6d466YmH8dMOmm1-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2416491423'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2102f729'/><parameter name='msid' value='2102f729-video-1
fcabf427-d7b8-4ce7-b16b-dd08851d507a-1'/><parameter name='cname'
value='3cE8HAhzUP3qeB-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='690127855'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2102f729'/><parameter name='msid' value='2102f729-video-1
fcabf427-d7b8-4ce7-b16b-dd08851d507a-1'/><parameter name='cname'
value='3cE8HAhzUP3qeB-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2933990695'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/0ec0ea5d'/><parameter name='msid' value='0ec0ea5d-video-1
99c297cc-8297-456c-a7ba-4e47fafcdbca-1'/><parameter name='cname'
value='VzQXLG42R8zRTyva-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1479734661'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/0ec0ea5d'/><parameter name='msid' value='0ec0ea5d-video-1
99c297cc-8297-456c-a7ba-4e47fafcdbca-1'/><parameter name='cname'
value='VzQXLG42R8zRTyva-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3501107951'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8d9d6f75'/><parameter name='msid' value='8d9d6f75-video-1
83662033-a657-417e-b221-c9ac285988a1-1'/><parameter name='cname'
value='swkkJ4phsxyOxpDx-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='769943275'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8d9d6f75'/><parameter name='msid' value='8d9d6f75-video-1
83662033-a657-417e-b221-c9ac285988a1-1'/><parameter name='cname'
value='swkkJ4phsxyOxpDx-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3661764338'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/52b9afe0'/><parameter name='msid' value='52b9afe0-video-1
70015e86-0ccb-4284-8e7e-b6f90bef9e59-1'/><parameter name='cname'
value='TsxZq31mSqMDjte-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3419874079'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/52b9afe0'/><parameter name='msid' value='52b9afe0-video-1
70015e86-0ccb-4284-8e7e-b6f90bef9e59-1'/><parameter name='cname'
value='TsxZq31mSqMDjte-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2321966727'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/26478e7c'/><parameter name='msid' value='26478e7c-video-1
b95a7e3d-4a1a-4d5a-8f2e-726c69231844-1'/><parameter name='cname'
value='hXe204MPXTIGEJPN-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4130135169'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/26478e7c'/><parameter name='msid' value='26478e7c-video-1
b95a7e3d-4a1a-4d5a-8f2e-726c69231844-1'/><parameter name='cname'
value='hXe204MPXTIGEJPN-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4094467496'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/7bd2a9ea'/><parameter name='msid' value='7bd2a9ea-video-1
7ff4114c-7975-4a39-bdf6-6bc9039c76ef-1'/><parameter name='cname'
value='vk2RvYEEuxOBNQLs-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='25224679'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/7bd2a9ea'/><parameter name='msid' value='7bd2a9ea-video-1
7ff4114c-7975-4a39-bdf6-6bc9039c76ef-1'/><parameter name='cname'
value='vk2RvYEEuxOBNQLs-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='881766685'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/5a3eb9f0'/><parameter name='msid' value='5a3eb9f0-video-1
89c635f6-c190-40f4-8a66-253df10a6a22-1'/><parameter name='cname'
value='k2SsOmTshWW7f0CU-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2520436648'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/5a3eb9f0'/><parameter name='msid' value='5a3eb9f0-video-1
89c635f6-c190-40f4-8a66-253df10a6a22-1'/><parameter name='cname'
value='k2SsOmTshWW7f0CU-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1762655065'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8190ac71'/><parameter name='msid' value='8190ac71-video-1
4277bacf-0698-45c9-a811-2277d66ec828-1'/><parameter name='cname'
value='lRdDRcQ8mnbx6THj-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2995923072'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8190ac71'/><parameter name='msid' value='8190ac71-video-1
4277bacf-0698-45c9-a811-2277d66ec828-1'/><parameter name='cname'
value='lRdDRcQ8mnbx6THj-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3787702567'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/93c05677'/><parameter name='msid' value='93c05677-video-1
9b2f8bc0-f6fd-4bc5-8409-150b7cf7d2bf-1'/><parameter name='cname'
value='JTGJl9Z7lXuHAGe-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4259299453'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/93c05677'/><parameter name='msid' value='93c05677-video-1
9b2f8bc0-f6fd-4bc5-8409-150b7cf7d2bf-1'/><parameter name='cname'
value='JTGJl9Z7lXuHAGe-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2899885446'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/145485d4'/><parameter name='msid' value='145485d4-video-1
91625c1c-ef97-4c19-aed2-6d5baf3a80a9-1'/><parameter name='cname'
value='gxLb3BKu4cf6kk0-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2453434189'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/145485d4'/><parameter name='msid' value='145485d4-video-1
91625c1c-ef97-4c19-aed2-6d5baf3a80a9-1'/><parameter name='cname'
value='gxLb3BKu4cf6kk0-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3900087522'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/4eb09074'/><parameter name='msid' value='4eb09074-video-1
06065ee4-dc08-4494-bf75-012cdf6ace44-1'/><parameter name='cname'
value='CHVLs8D2QQDO8Run-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3198711409'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/4eb09074'/><parameter name='msid' value='4eb09074-video-1
06065ee4-dc08-4494-bf75-012cdf6ace44-1'/><parameter name='cname'
value='CHVLs8D2QQDO8Run-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1869488397'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/d5c1b5ba'/><parameter name='msid' value='d5c1b5ba-video-1
a66da610-0a5f-4579-97d6-fb596bd693df-1'/><parameter name='cname'
value='yPkt86FbZqFD46-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3463369947'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/d5c1b5ba'/><parameter name='msid' value='d5c1b5ba-video-1
a66da610-0a5f-4579-97d6-fb596bd693df-1'/><parameter name='cname'
value='yPkt86FbZqFD46-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2085959572'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3a56eb7b'/><parameter name='msid' value='3a56eb7b-video-1
c4f62d0f-2590-4159-a7d5-13c55ad1fe34-1'/><parameter name='cname'
value='LVCSlfwMnxLATKu-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2094406127'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3a56eb7b'/><parameter name='msid' value='3a56eb7b-video-1
c4f62d0f-2590-4159-a7d5-13c55ad1fe34-1'/><parameter name='cname'
value='LVCSlfwMnxLATKu-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='476318847'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/59db9368'/><parameter name='msid' value='59db9368-video-1
bb63f13d-f2d0-4aae-be75-fb73a1a49a35-1'/><parameter name='cname'
value='WyAop1qx1jA1UOe-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4133143639'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/59db9368'/><parameter name='msid' value='59db9368-video-1
bb63f13d-f2d0-4aae-be75-fb73a1a49a35-1'/><parameter name='cname'
value='WyAop1qx1jA1UOe-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3875634630'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a0145ae0'/><parameter name='msid' value='a0145ae0-video-1
454c577f-060b-497a-9010-83138639f214-1'/><parameter name='cname'
value='q26Paxcv8XgnMh-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='743784598'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a0145ae0'/><parameter name='msid' value='a0145ae0-video-1
454c577f-060b-497a-9010-83138639f214-1'/><parameter name='cname'
value='q26Paxcv8XgnMh-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='899527434'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ea4e0131'/><parameter name='msid' value='ea4e0131-video-1
5cf30bff-0ff7-4f87-a99b-f80cd445a02b-1'/><parameter name='cname'
value='xOb74ccOHsQKcNb-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2084418901'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ea4e0131'/><parameter name='msid' value='ea4e0131-video-1
5cf30bff-0ff7-4f87-a99b-f80cd445a02b-1'/><parameter name='cname'
value='xOb74ccOHsQKcNb-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1269882900'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/94da69f2'/><parameter name='msid' value='94da69f2-video-1
9d55c8b0-86eb-4f35-a01f-de42a48fb66a-1'/><parameter name='cname'
value='R6ZpGtIJ1CY7tGc-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1824732256'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/94da69f2'/><parameter name='msid' value='94da69f2-video-1
9d55c8b0-86eb-4f35-a01f-de42a48fb66a-1'/><parameter name='cname'
value='R6ZpGtIJ1CY7tGc-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1549060418'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a4403f90'/><parameter name='msid' value='a4403f90-video-1
96e1c797-e9f6-49ca-8042-aad853200598-1'/><parameter name='cname'
value='4HPGisqm6yjpyVn-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2985534507'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a4403f90'/><parameter name='msid' value='a4403f90-video-1
96e1c797-e9f6-49ca-8042-aad853200598-1'/><parameter name='cname'
value='4HPGisqm6yjpyVn-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3915745999'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8659b7ad'/><parameter name='msid' value='8659b7ad-video-1
a3840910-4592-46b7-88c8-2d4450e8054c-1'/><parameter name='cname'
value='opCjRxAmvjZ9nH-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2958515017'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8659b7ad'/><parameter name='msid' value='8659b7ad-video-1
a3840910-4592-46b7-88c8-2d4450e8054c-1'/><parameter name='cname'
value='opCjRxAmvjZ9nH-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3132583719'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/4b53cedd'/><parameter name='msid' value='4b53cedd-video-1
814b4fcb-dee5-40a7-a0ad-0bb9343ca654-1'/><parameter name='cname'
value='WzSbu1GGJYMZ3Osb-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1114771761'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/4b53cedd'/><parameter name='msid' value='4b53cedd-video-1
814b4fcb-dee5-40a7-a0ad-0bb9343ca654-1'/><parameter name='cname'
value='WzSbu1GGJYMZ3Osb-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4247270964'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/76014272'/><parameter name='msid' value='76014272-video-1
f46b0db4-9ffd-4b0f-8457-e6fdafcbe542-1'/><parameter name='cname'
value='W0vZXM2tp4SiiF-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2742294269'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/76014272'/><parameter name='msid' value='76014272-video-1
f46b0db4-9ffd-4b0f-8457-e6fdafcbe542-1'/><parameter name='cname'
value='W0vZXM2tp4SiiF-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2212500456'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ba6de3db'/><parameter name='msid' value='ba6de3db-video-1
5e242989-f0fc-48f3-9dd0-cb1a12291fbf-1'/><parameter name='cname'
value='a6dn2D1pTbWrLD-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2004845454'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ba6de3db'/><parameter name='msid' value='ba6de3db-video-1
5e242989-f0fc-48f3-9dd0-cb1a12291fbf-1'/><parameter name='cname'
value='a6dn2D1pTbWrLD-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1621753796'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/55566217'/><parameter name='msid' value='55566217-video-1
c77a1436-ccf7-4d3b-9e69-6e6f13c40d6b-1'/><parameter name='cname'
value='EUypOPWGljJgjf0-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3873410378'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/55566217'/><parameter name='msid' value='55566217-video-1
c77a1436-ccf7-4d3b-9e69-6e6f13c40d6b-1'/><parameter name='cname'
value='EUypOPWGljJgjf0-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4260529622'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/547fb0a9'/><parameter name='msid' value='547fb0a9-video-1
7e2eb887-fbb5-46b2-b842-e6b39582e480-1'/><parameter name='cname'
value='U0ONQlboxSSVI7fI-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='124397040'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/547fb0a9'/><parameter name='msid' value='547fb0a9-video-1
7e2eb887-fbb5-46b2-b842-e6b39582e480-1'/><parameter name='cname'
value='U0ONQlboxSSVI7fI-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1055626548'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9259a7c7'/><parameter name='msid' value='9259a7c7-video-1
7a1e8ca9-74c4-4779-9ddd-2f9338e0b5ff-1'/><parameter name='cname'
value='RWwLlGSzDI1Bpoi-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4105491785'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9259a7c7'/><parameter name='msid' value='9259a7c7-video-1
7a1e8ca9-74c4-4779-9ddd-2f9338e0b5ff-1'/><parameter name='cname'
value='RWwLlGSzDI1Bpoi-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2138032592'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/300c1672'/><parameter name='msid' value='300c1672-video-1
b0e859d1-5444-4bb9-a687-04b3ade603ea-1'/><parameter name='cname'
value='ILof5mtMJRj5XAEm-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='958397055'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/300c1672'/><parameter name='msid' value='300c1672-video-1
b0e859d1-5444-4bb9-a687-04b3ade603ea-1'/><parameter name='cname'
value='ILof5mtMJRj5XAEm-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3413273770'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ae556f0f'/><parameter name='msid' value='ae556f0f-video-1
92da102b-0b9f-4047-9185-decaa0b8b53a-1'/><parameter name='cname'
value='Q1fFBuzlzo5cRboJ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='175639581'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ae556f0f'/><parameter name='msid' value='ae556f0f-video-1
92da102b-0b9f-4047-9185-decaa0b8b53a-1'/><parameter name='cname'
value='Q1fFBuzlzo5cRboJ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='536916073'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/4c7d77e4'/><parameter name='msid' value='4c7d77e4-video-1
de78b9e1-db0d-4619-abec-1e33fa3595cc-1'/><parameter name='cname'
value='jj8Uzsfwpy4fIzoU-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1332847778'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/4c7d77e4'/><parameter name='msid' value='4c7d77e4-video-1
de78b9e1-db0d-4619-abec-1e33fa3595cc-1'/><parameter name='cname'
value='jj8Uzsfwpy4fIzoU-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='987342671'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9b563144'/><parameter name='msid' value='9b563144-video-1
4f1a00e8-5686-4f31-9000-06ba73169501-1'/><parameter name='cname'
value='Qqt95wPdodT9mZo-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2888879998'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9b563144'/><parameter name='msid' value='9b563144-video-1
4f1a00e8-5686-4f31-9000-06ba73169501-1'/><parameter name='cname'
value='Qqt95wPdodT9mZo-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='414637003'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8da30cbb'/><parameter name='msid' value='8da30cbb-video-1
31daa9b8-7325-479b-ba9c-5a8b5f6b8364-1'/><parameter name='cname'
value='9BboDv3aHzt6ZzJ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1324318327'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8da30cbb'/><parameter name='msid' value='8da30cbb-video-1
31daa9b8-7325-479b-ba9c-5a8b5f6b8364-1'/><parameter name='cname'
value='9BboDv3aHzt6ZzJ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2189156150'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/62451427'/><parameter name='msid' value='62451427-video-1
80477f9d-13f3-4064-93bc-d231fcfe7bb3-1'/><parameter name='cname'
value='KSEpkDsUTwCVdV-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1299433078'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/62451427'/><parameter name='msid' value='62451427-video-1
80477f9d-13f3-4064-93bc-d231fcfe7bb3-1'/><parameter name='cname'
value='KSEpkDsUTwCVdV-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2316785730'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/1510f32b'/><parameter name='msid' value='1510f32b-video-1
bc9bccc6-135b-407e-93b6-3824d27732dc-1'/><parameter name='cname'
value='T1d2bPtdUl3iGG9Z-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2064123002'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/1510f32b'/><parameter name='msid' value='1510f32b-video-1
bc9bccc6-135b-407e-93b6-3824d27732dc-1'/><parameter name='cname'
value='T1d2bPtdUl3iGG9Z-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3673885017'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/6beb7d88'/><parameter name='msid' value='6beb7d88-video-1
79f19fc3-5e8b-440e-9ebb-60e316c86e48-1'/><parameter name='cname'
value='b5aO0gBKJRVvuWv-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1499316776'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/6beb7d88'/><parameter name='msid' value='6beb7d88-video-1
79f19fc3-5e8b-440e-9ebb-60e316c86e48-1'/><parameter name='cname'
value='b5aO0gBKJRVvuWv-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1260086740'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8a7d57c9'/><parameter name='msid' value='8a7d57c9-video-1
554680e7-c877-4897-992f-3963839921a0-1'/><parameter name='cname'
value='VFF4XbhmPs3mg5R-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='873157891'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8a7d57c9'/><parameter name='msid' value='8a7d57c9-video-1
554680e7-c877-4897-992f-3963839921a0-1'/><parameter name='cname'
value='VFF4XbhmPs3mg5R-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='233061626'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ebc7a10f'/><parameter name='msid' value='ebc7a10f-video-1
fff7413b-8885-4ab1-96e2-fa7fd7ead21c-1'/><parameter name='cname'
value='Hp9oVDGnfciDdF6-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1222851408'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ebc7a10f'/><parameter name='msid' value='ebc7a10f-video-1
fff7413b-8885-4ab1-96e2-fa7fd7ead21c-1'/><parameter name='cname'
value='Hp9oVDGnfciDdF6-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2784965'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2026fb83'/><parameter name='msid' value='2026fb83-video-1
08536267-741e-435a-a98d-66776361129c-1'/><parameter name='cname'
value='BtrpqRx1PZknBdmf-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4245285065'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2026fb83'/><parameter name='msid' value='2026fb83-video-1
08536267-741e-435a-a98d-66776361129c-1'/><parameter name='cname'
value='BtrpqRx1PZknBdmf-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1577954381'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/b5eb4453'/><parameter name='msid' value='b5eb4453-video-1
bcee0427-a552-4c46-9bd2-3216c131ade0-1'/><parameter name='cname'
value='SeBPY4zwLylSfi-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='254910277'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/b5eb4453'/><parameter name='msid' value='b5eb4453-video-1
bcee0427-a552-4c46-9bd2-3216c131ade0-1'/><parameter name='cname'
value='SeBPY4zwLylSfi-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2595011221'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/36bedc5e'/><parameter name='msid' value='36bedc5e-video-1
af85e10b-f51e-4f9b-917f-b006e18045a7-1'/><parameter name='cname'
value='hr2kpHXGnCvEVmc4-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4198622749'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/36bedc5e'/><parameter name='msid' value='36bedc5e-video-1
af85e10b-f51e-4f9b-917f-b006e18045a7-1'/><parameter name='cname'
value='hr2kpHXGnCvEVmc4-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2857899626'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/83d675f6'/><parameter name='msid' value='83d675f6-video-1
9b58a381-7906-4531-998d-d207692c6af7-1'/><parameter name='cname'
value='RK0K5tdEfHnjbMGD-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='775555243'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/83d675f6'/><parameter name='msid' value='83d675f6-video-1
9b58a381-7906-4531-998d-d207692c6af7-1'/><parameter name='cname'
value='RK0K5tdEfHnjbMGD-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1624788562'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/b513b81f'/><parameter name='msid' value='b513b81f-video-1
d1ecc9ca-3c93-42ec-b777-92db14728a6b-1'/><parameter name='cname'
value='TxlXQT6J9Lf70yys-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2210289623'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/b513b81f'/><parameter name='msid' value='b513b81f-video-1
d1ecc9ca-3c93-42ec-b777-92db14728a6b-1'/><parameter name='cname'
value='TxlXQT6J9Lf70yys-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1210897492'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/b6351da0'/><parameter name='msid' value='b6351da0-video-1
a10f5de9-696f-43b7-8b55-342d6813c162-1'/><parameter name='cname'
value='sGcaAm2c1GCo5RyU-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2125834362'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/b6351da0'/><parameter name='msid' value='b6351da0-video-1
a10f5de9-696f-43b7-8b55-342d6813c162-1'/><parameter name='cname'
value='sGcaAm2c1GCo5RyU-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3112890413'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/bf6a6477'/><parameter name='msid' value='bf6a6477-video-1
61cb3256-3845-4b4e-8e30-09e7b4888072-1'/><parameter name='cname'
value='jgoZCyqeaqngZo3c-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3254307000'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/bf6a6477'/><parameter name='msid' value='bf6a6477-video-1
61cb3256-3845-4b4e-8e30-09e7b4888072-1'/><parameter name='cname'
value='jgoZCyqeaqngZo3c-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1095567018'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/74f8f9bd'/><parameter name='msid' value='74f8f9bd-video-1
2971c3cb-ceea-4c53-bb12-1a56402ecb5b-1'/><parameter name='cname'
value='NQYCpBLTc2hzTMjK-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3249312017'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/74f8f9bd'/><parameter name='msid' value='74f8f9bd-video-1
2971c3cb-ceea-4c53-bb12-1a56402ecb5b-1'/><parameter name='cname'
value='NQYCpBLTc2hzTMjK-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1233830395'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/00236977'/><parameter name='msid' value='00236977-video-1
629598d7-cfa1-4b81-9cf0-ec88d30dd1b4-1'/><parameter name='cname'
value='OhKVatH1TO8Dujvj-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2002581344'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/00236977'/><parameter name='msid' value='00236977-video-1
629598d7-cfa1-4b81-9cf0-ec88d30dd1b4-1'/><parameter name='cname'
value='OhKVatH1TO8Dujvj-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3949273998'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/fc2293db'/><parameter name='msid' value='fc2293db-video-1
7f28fb2c-1c93-4702-beb9-84ffb6ea3742-1'/><parameter name='cname'
value='4WMWG0UMTiVY4kcd-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3686939208'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/fc2293db'/><parameter name='msid' value='fc2293db-video-1
7f28fb2c-1c93-4702-beb9-84ffb6ea3742-1'/><parameter name='cname'
value='4WMWG0UMTiVY4kcd-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3475387208'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/0f07cea1'/><parameter name='msid' value='0f07cea1-video-1
d2908542-e5a8-47e5-9b24-7ce5eb66fbb5-1'/><parameter name='cname'
value='0nJooRxZ7ItyPNSE-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3200464902'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/0f07cea1'/><parameter name='msid' value='0f07cea1-video-1
d2908542-e5a8-47e5-9b24-7ce5eb66fbb5-1'/><parameter name='cname'
value='0nJooRxZ7ItyPNSE-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1358090659'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ab52a690'/><parameter name='msid' value='ab52a690-video-1
19979dbd-3ee9-40ed-9d3e-b500aaaa8218-1'/><parameter name='cname'
value='Xlzs3Lz5GrzubNW1-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1275965776'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ab52a690'/><parameter name='msid' value='ab52a690-video-1
19979dbd-3ee9-40ed-9d3e-b500aaaa8218-1'/><parameter name='cname'
value='Xlzs3Lz5GrzubNW1-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3399072917'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/5ff29465'/><parameter name='msid' value='5ff29465-video-1
c4bc4fe1-ffe1-4bd6-a583-2b150960ab2a-1'/><parameter name='cname'
value='nHY8NJOOHeqP9l5-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3719198800'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/5ff29465'/><parameter name='msid' value='5ff29465-video-1
c4bc4fe1-ffe1-4bd6-a583-2b150960ab2a-1'/><parameter name='cname'
value='nHY8NJOOHeqP9l5-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3456249411'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a14eaa05'/><parameter name='msid' value='a14eaa05-video-1
e684f2b0-d09b-411b-b966-8574967c505d-1'/><parameter name='cname'
value='FMjbybZ63rhsBh-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2170305701'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a14eaa05'/><parameter name='msid' value='a14eaa05-video-1
e684f2b0-d09b-411b-b966-8574967c505d-1'/><parameter name='cname'
value='FMjbybZ63rhsBh-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1477028783'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8b027c86'/><parameter name='msid' value='8b027c86-video-1
591f9c9b-f167-4d96-a748-bc588c7b5990-1'/><parameter name='cname'
value='taQRIwZ3eH5t4CZu-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1339306522'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8b027c86'/><parameter name='msid' value='8b027c86-video-1
591f9c9b-f167-4d96-a748-bc588c7b5990-1'/><parameter name='cname'
value='taQRIwZ3eH5t4CZu-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3543067378'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/7adfdf7a'/><parameter name='msid' value='7adfdf7a-video-1
cd24d467-34dc-4656-a44c-70f09242ab38-1'/><parameter name='cname'
value='RO6LAzxs75oLBBE-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1294804268'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/7adfdf7a'/><parameter name='msid' value='7adfdf7a-video-1
cd24d467-34dc-4656-a44c-70f09242ab38-1'/><parameter name='cname'
value='RO6LAzxs75oLBBE-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1874214355'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/aaab9a34'/><parameter name='msid' value='aaab9a34-video-1
bd035d58-279e-4618-a491-0b9cdac0b4da-1'/><parameter name='cname'
value='A3jGu4G4hnpge2yr-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1679600615'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/aaab9a34'/><parameter name='msid' value='aaab9a34-video-1
bd035d58-279e-4618-a491-0b9cdac0b4da-1'/><parameter name='cname'
value='A3jGu4G4hnpge2yr-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3696336965'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/c95d9152'/><parameter name='msid' value='c95d9152-video-1
47967b2a-57a8-4661-a1ed-4fa5f9fdd49e-1'/><parameter name='cname'
value='nhNO46R5TEeuPeB-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1219983756'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/c95d9152'/><parameter name='msid' value='c95d9152-video-1
47967b2a-57a8-4661-a1ed-4fa5f9fdd49e-1'/><parameter name='cname'
value='nhNO46R5TEeuPeB-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='778512217'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/c0878011'/><parameter name='msid' value='c0878011-video-1
ef8cece1-c5f3-41c9-9599-1a473567ce7f-1'/><parameter name='cname'
value='tVYFaajPiM3GiKxE-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='133627610'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/c0878011'/><parameter name='msid' value='c0878011-video-1
ef8cece1-c5f3-41c9-9599-1a473567ce7f-1'/><parameter name='cname'
value='tVYFaajPiM3GiKxE-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1107532463'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/38e28883'/><parameter name='msid' value='38e28883-video-1
cea97772-7389-46dd-807a-f6c9f8ac9a99-1'/><parameter name='cname'
value='oM5DVUSjnjkAhJrU-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3675864008'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/38e28883'/><parameter name='msid' value='38e28883-video-1
cea97772-7389-46dd-807a-f6c9f8ac9a99-1'/><parameter name='cname'
value='oM5DVUSjnjkAhJrU-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='895838973'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/f98765de'/><parameter name='msid' value='f98765de-video-1
b9bb7900-4a06-4796-9fbf-4049b7d200d7-1'/><parameter name='cname'
value='paZk9byo3hl6BkoK-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3829559843'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/f98765de'/><parameter name='msid' value='f98765de-video-1
b9bb7900-4a06-4796-9fbf-4049b7d200d7-1'/><parameter name='cname'
value='paZk9byo3hl6BkoK-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1059330401'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/0858f604'/><parameter name='msid' value='0858f604-video-1
c2fe9a07-8299-4396-9199-beb1ae752eba-1'/><parameter name='cname'
value='y3Qi4B2YYdO1dLZ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='516449173'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/0858f604'/><parameter name='msid' value='0858f604-video-1
c2fe9a07-8299-4396-9199-beb1ae752eba-1'/><parameter name='cname'
value='y3Qi4B2YYdO1dLZ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='724822713'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/669d5424'/><parameter name='msid' value='669d5424-video-1
b260f317-6a1d-42cb-8700-4d85b11ecb3c-1'/><parameter name='cname'
value='XK21tTFsca2PqA9-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4258625471'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/669d5424'/><parameter name='msid' value='669d5424-video-1
b260f317-6a1d-42cb-8700-4d85b11ecb3c-1'/><parameter name='cname'
value='XK21tTFsca2PqA9-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='568458139'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/06f0ecba'/><parameter name='msid' value='06f0ecba-video-1
b8714557-bd94-4bb6-9647-357872c38b25-1'/><parameter name='cname'
value='pIyws8usAUtJE9N-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3756351127'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/06f0ecba'/><parameter name='msid' value='06f0ecba-video-1
b8714557-bd94-4bb6-9647-357872c38b25-1'/><parameter name='cname'
value='pIyws8usAUtJE9N-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1050031550'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/385027d0'/><parameter name='msid' value='385027d0-video-1
08a62c59-d483-4e4a-910d-305e38295185-1'/><parameter name='cname'
value='tw7aMTwQpz3Mzc9-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1585839800'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/385027d0'/><parameter name='msid' value='385027d0-video-1
08a62c59-d483-4e4a-910d-305e38295185-1'/><parameter name='cname'
value='tw7aMTwQpz3Mzc9-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1339629948'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/357fccae'/><parameter name='msid' value='357fccae-video-1
a604d6c1-5580-4e07-b803-fb12207e841b-1'/><parameter name='cname'
value='ravyaJomoeGZaSmn-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='272537448'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/357fccae'/><parameter name='msid' value='357fccae-video-1
a604d6c1-5580-4e07-b803-fb12207e841b-1'/><parameter name='cname'
value='ravyaJomoeGZaSmn-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3855370878'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/73d69fe1'/><parameter name='msid' value='73d69fe1-video-1
04513f64-3b25-45b8-b77a-10debc03ce64-1'/><parameter name='cname'
value='72zYjsyVTOhSwHg-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2839482785'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/73d69fe1'/><parameter name='msid' value='73d69fe1-video-1
04513f64-3b25-45b8-b77a-10debc03ce64-1'/><parameter name='cname'
value='72zYjsyVTOhSwHg-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3695303859'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/c117a8ed'/><parameter name='msid' value='c117a8ed-video-1
e8ff6f90-6838-4a52-9db9-b9731d9a62da-1'/><parameter name='cname'
value='1FlWByX8yPLFvaVo-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1195053194'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/c117a8ed'/><parameter name='msid' value='c117a8ed-video-1
e8ff6f90-6838-4a52-9db9-b9731d9a62da-1'/><parameter name='cname'
value='1FlWByX8yPLFvaVo-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1700681367'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/c3915203'/><parameter name='msid' value='c3915203-video-1
43b851a9-688f-42b7-b462-009652abc8b7-1'/><parameter name='cname'
value='swUXgxBmdgcjNpAE-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='496170042'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/c3915203'/><parameter name='msid' value='c3915203-video-1
43b851a9-688f-42b7-b462-009652abc8b7-1'/><parameter name='cname'
value='swUXgxBmdgcjNpAE-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2830699346'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/28f58e48'/><parameter name='msid' value='28f58e48-video-1
f94e6292-b588-4efe-a1c1-5059c9ce30b0-1'/><parameter name='cname'
value='fn8TtzLpFmdhLbn-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3893152951'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/28f58e48'/><parameter name='msid' value='28f58e48-video-1
f94e6292-b588-4efe-a1c1-5059c9ce30b0-1'/><parameter name='cname'
value='fn8TtzLpFmdhLbn-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3079307631'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/158885e5'/><parameter name='msid' value='158885e5-video-1
3e63ca3b-e2ad-41ab-b374-36779c619599-1'/><parameter name='cname'
value='9ikNlbjFNUfgTBuz-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2567351783'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/158885e5'/><parameter name='msid' value='158885e5-video-1
3e63ca3b-e2ad-41ab-b374-36779c619599-1'/><parameter name='cname'
value='9ikNlbjFNUfgTBuz-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3705023124'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/b38da37c'/><parameter name='msid' value='b38da37c-video-1
280644b8-3d64-45c2-8e06-59fbd32f01d1-1'/><parameter name='cname'
value='T12IJn7qDGmG9oYP-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2860557671'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/b38da37c'/><parameter name='msid' value='b38da37c-video-1
280644b8-3d64-45c2-8e06-59fbd32f01d1-1'/><parameter name='cname'
value='T12IJn7qDGmG9oYP-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='107481829'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2f5a27a6'/><parameter name='msid' value='2f5a27a6-video-1
ec3ebe50-b05e-408f-a891-7802b12a0a33-1'/><parameter name='cname'
value='iaVqVZ0soXReHXLO-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='369777588'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2f5a27a6'/><parameter name='msid' value='2f5a27a6-video-1
ec3ebe50-b05e-408f-a891-7802b12a0a33-1'/><parameter name='cname'
value='iaVqVZ0soXReHXLO-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='270546831'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/08f816a8'/><parameter name='msid' value='08f816a8-video-1
5cb49ae8-bd6d-4279-b642-8c9cb48eac54-1'/><parameter name='cname'
value='Pg7IoNEtvOFl6Ci-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='334155182'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/08f816a8'/><parameter name='msid' value='08f816a8-video-1
5cb49ae8-bd6d-4279-b642-8c9cb48eac54-1'/><parameter name='cname'
value='Pg7IoNEtvOFl6Ci-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3834868177'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/eb5ad54e'/><parameter name='msid' value='eb5ad54e-video-1
ec2f5582-f478-4ff7-9b96-a7226150d20e-1'/><parameter name='cname'
value='jiEAxecwa1GtWpWD-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3195638015'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/eb5ad54e'/><parameter name='msid' value='eb5ad54e-video-1
ec2f5582-f478-4ff7-9b96-a7226150d20e-1'/><parameter name='cname'
value='jiEAxecwa1GtWpWD-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2440806148'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8dd4825a'/><parameter name='msid' value='8dd4825a-video-1
ef1e2ec9-da9f-4c8b-b5db-4c6a99793633-1'/><parameter name='cname'
value='Rznu1AynNFb5N8tA-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4283883363'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8dd4825a'/><parameter name='msid' value='8dd4825a-video-1
ef1e2ec9-da9f-4c8b-b5db-4c6a99793633-1'/><parameter name='cname'
value='Rznu1AynNFb5N8tA-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3564177345'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/08333a44'/><parameter name='msid' value='08333a44-video-1
acda269b-93dc-44c2-ae8c-3cdf4371cce8-1'/><parameter name='cname'
value='nbtgRlADezTizHFa-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='904812922'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/08333a44'/><parameter name='msid' value='08333a44-video-1
acda269b-93dc-44c2-ae8c-3cdf4371cce8-1'/><parameter name='cname'
value='nbtgRlADezTizHFa-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='381401815'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/044abee7'/><parameter name='msid' value='044abee7-video-1
456692c2-2c9c-48e3-bd4e-9cecbf3770c5-1'/><parameter name='cname'
value='Jc902lhM2hWwagkJ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2116550699'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/044abee7'/><parameter name='msid' value='044abee7-video-1
456692c2-2c9c-48e3-bd4e-9cecbf3770c5-1'/><parameter name='cname'
value='Jc902lhM2hWwagkJ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1233201320'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/30ed2ea9'/><parameter name='msid' value='30ed2ea9-video-1
aeb017a7-af95-4489-9eb1-8e76e9576291-1'/><parameter name='cname'
value='6DaWy6fBdawgxmr-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1190562824'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/30ed2ea9'/><parameter name='msid' value='30ed2ea9-video-1
aeb017a7-af95-4489-9eb1-8e76e9576291-1'/><parameter name='cname'
value='6DaWy6fBdawgxmr-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3764503183'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9c5d455f'/><parameter name='msid' value='9c5d455f-video-1
0b617283-acf8-46d2-b791-84789945d056-1'/><parameter name='cname'
value='ljdFvHu8JU6mta-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1092010801'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9c5d455f'/><parameter name='msid' value='9c5d455f-video-1
0b617283-acf8-46d2-b791-84789945d056-1'/><parameter name='cname'
value='ljdFvHu8JU6mta-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3346647120'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/0f09b4e1'/><parameter name='msid' value='0f09b4e1-video-1
10dc1a7f-f79e-4aba-be44-c93a17b8183c-1'/><parameter name='cname'
value='coSMLvwhsVgmpQS-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3894611406'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/0f09b4e1'/><parameter name='msid' value='0f09b4e1-video-1
10dc1a7f-f79e-4aba-be44-c93a17b8183c-1'/><parameter name='cname'
value='coSMLvwhsVgmpQS-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1400096367'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/772bca4a'/><parameter name='msid' value='772bca4a-video-1
7632a93c-7619-4eaa-8938-db7a974adac8-1'/><parameter name='cname'
value='i7mICw6citGUVUvx-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2899786031'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/772bca4a'/><parameter name='msid' value='772bca4a-video-1
7632a93c-7619-4eaa-8938-db7a974adac8-1'/><parameter name='cname'
value='i7mICw6citGUVUvx-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2178146442'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/b12deed3'/><parameter name='msid' value='b12deed3-video-1
8e5dd6f4-1e46-4917-a433-d6f3f64076b9-1'/><parameter name='cname'
value='eelv1SOuilxD4MQN-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3420967681'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/b12deed3'/><parameter name='msid' value='b12deed3-video-1
8e5dd6f4-1e46-4917-a433-d6f3f64076b9-1'/><parameter name='cname'
value='eelv1SOuilxD4MQN-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3518349100'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/151f09fd'/><parameter name='msid' value='151f09fd-video-1
bd08f981-5654-4b96-94a6-237f38282fb0-1'/><parameter name='cname'
value='Bo03CdJw7ggbx7d-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2207993559'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/151f09fd'/><parameter name='msid' value='151f09fd-video-1
bd08f981-5654-4b96-94a6-237f38282fb0-1'/><parameter name='cname'
value='Bo03CdJw7ggbx7d-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='300639962'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/79392813'/><parameter name='msid' value='79392813-video-1
2bf7010f-51dc-4eb5-979a-a56b7ab578a4-1'/><parameter name='cname'
value='gyxzVon9Q6TuBaR0-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4022114853'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/79392813'/><parameter name='msid' value='79392813-video-1
2bf7010f-51dc-4eb5-979a-a56b7ab578a4-1'/><parameter name='cname'
value='gyxzVon9Q6TuBaR0-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1902047528'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2eaf60cc'/><parameter name='msid' value='2eaf60cc-video-1
84b249d1-ba33-4277-afcc-2f97fabfda35-1'/><parameter name='cname'
value='sNuI0EWvPtF1Fmmu-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3226167335'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2eaf60cc'/><parameter name='msid' value='2eaf60cc-video-1
84b249d1-ba33-4277-afcc-2f97fabfda35-1'/><parameter name='cname'
value='sNuI0EWvPtF1Fmmu-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3723347104'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a909a23a'/><parameter name='msid' value='a909a23a-video-1
4b37fff1-4a30-43eb-bf26-825a36ea0fa0-1'/><parameter name='cname'
value='t3i0Lv3LUTkKbKb-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1430498867'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a909a23a'/><parameter name='msid' value='a909a23a-video-1
4b37fff1-4a30-43eb-bf26-825a36ea0fa0-1'/><parameter name='cname'
value='t3i0Lv3LUTkKbKb-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1063094944'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ceded07d'/><parameter name='msid' value='ceded07d-video-1
b1b00d9c-fef8-478f-89c4-5e8b80f3ad60-1'/><parameter name='cname'
value='w49V8uX3tot4D9n-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3836894812'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ceded07d'/><parameter name='msid' value='ceded07d-video-1
b1b00d9c-fef8-478f-89c4-5e8b80f3ad60-1'/><parameter name='cname'
value='w49V8uX3tot4D9n-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='223861026'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a8fa4ea7'/><parameter name='msid' value='a8fa4ea7-video-1
e2eceb13-3e53-404d-a3b8-cae9deecc070-1'/><parameter name='cname'
value='qy6pmYUyY6UYw5Hf-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1264113980'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a8fa4ea7'/><parameter name='msid' value='a8fa4ea7-video-1
e2eceb13-3e53-404d-a3b8-cae9deecc070-1'/><parameter name='cname'
value='qy6pmYUyY6UYw5Hf-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3361450204'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/7fb44da5'/><parameter name='msid' value='7fb44da5-video-1
4c5f3a80-00df-42f4-a64b-beabdf5ac952-1'/><parameter name='cname'
value='R3jjdGAabhC3KK6-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='226535599'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/7fb44da5'/><parameter name='msid' value='7fb44da5-video-1
4c5f3a80-00df-42f4-a64b-beabdf5ac952-1'/><parameter name='cname'
value='R3jjdGAabhC3KK6-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3653760233'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/baff9156'/><parameter name='msid' value='baff9156-video-1
8ae78076-d992-4a66-8d63-502f28fc1f98-1'/><parameter name='cname'
value='d4QiTeWPDDNsr1i-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4033738988'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/baff9156'/><parameter name='msid' value='baff9156-video-1
8ae78076-d992-4a66-8d63-502f28fc1f98-1'/><parameter name='cname'
value='d4QiTeWPDDNsr1i-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2121199325'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/b370aec1'/><parameter name='msid' value='b370aec1-video-1
8ec2f569-a6b2-478a-b122-a00604083f2e-1'/><parameter name='cname'
value='WLN1k3ufzYQ2eGGU-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='543638123'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/b370aec1'/><parameter name='msid' value='b370aec1-video-1
8ec2f569-a6b2-478a-b122-a00604083f2e-1'/><parameter name='cname'
value='WLN1k3ufzYQ2eGGU-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1407826520'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/89c5699c'/><parameter name='msid' value='89c5699c-video-1
79f0eb26-2487-4389-85d9-cfe03c81b95c-1'/><parameter name='cname'
value='TNEm4hT82BNx6Ojc-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2783558865'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/89c5699c'/><parameter name='msid' value='89c5699c-video-1
79f0eb26-2487-4389-85d9-cfe03c81b95c-1'/><parameter name='cname'
value='TNEm4hT82BNx6Ojc-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2573267194'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/74c732f5'/><parameter name='msid' value='74c732f5-video-1
468bf7e6-44fb-4666-af50-65ba437f4ee2-1'/><parameter name='cname'
value='Pe52En7aXRJxFYhi-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2096637453'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/74c732f5'/><parameter name='msid' value='74c732f5-video-1
468bf7e6-44fb-4666-af50-65ba437f4ee2-1'/><parameter name='cname'
value='Pe52En7aXRJxFYhi-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3996542192'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/27108f9d'/><parameter name='msid' value='27108f9d-video-1
9b7c38a2-d11a-4a48-ba51-61fd91a905a9-1'/><parameter name='cname'
value='AOyJHJcuTwQiWaB8-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1772261054'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/27108f9d'/><parameter name='msid' value='27108f9d-video-1
9b7c38a2-d11a-4a48-ba51-61fd91a905a9-1'/><parameter name='cname'
value='AOyJHJcuTwQiWaB8-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='127847477'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/0dcabcc4'/><parameter name='msid' value='0dcabcc4-video-1
1458f644-92c1-4261-b591-2ba1f97ff95e-1'/><parameter name='cname'
value='086GWvkqsw39QJ9Z-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1597023702'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/0dcabcc4'/><parameter name='msid' value='0dcabcc4-video-1
1458f644-92c1-4261-b591-2ba1f97ff95e-1'/><parameter name='cname'
value='086GWvkqsw39QJ9Z-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1149316204'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/37cb4bda'/><parameter name='msid' value='37cb4bda-video-1
d34b1a99-466a-4d52-a044-3b4d3a60077b-1'/><parameter name='cname'
value='0qm6ykXuUtgBrQ2s-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2291508728'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/37cb4bda'/><parameter name='msid' value='37cb4bda-video-1
d34b1a99-466a-4d52-a044-3b4d3a60077b-1'/><parameter name='cname'
value='0qm6ykXuUtgBrQ2s-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3086733646'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/f831c6e9'/><parameter name='msid' value='f831c6e9-video-1
a3091cd2-8848-410f-801b-036ce8be2ea3-1'/><parameter name='cname'
value='fGoEQxGq0XEJfvGF-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='24367976'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/f831c6e9'/><parameter name='msid' value='f831c6e9-video-1
a3091cd2-8848-410f-801b-036ce8be2ea3-1'/><parameter name='cname'
value='fGoEQxGq0XEJfvGF-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1173555167'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/dcad5c7d'/><parameter name='msid' value='dcad5c7d-video-1
f87a4960-7a93-450e-a562-da7691553c97-1'/><parameter name='cname'
value='MGhFb4lERWFEyZ1-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='533350787'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/dcad5c7d'/><parameter name='msid' value='dcad5c7d-video-1
f87a4960-7a93-450e-a562-da7691553c97-1'/><parameter name='cname'
value='MGhFb4lERWFEyZ1-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3736750019'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9e681fbc'/><parameter name='msid' value='9e681fbc-video-1
03d210d4-6055-4774-8add-44cadaf7808c-1'/><parameter name='cname'
value='qeRpGY3QDUOGojC-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2385051398'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9e681fbc'/><parameter name='msid' value='9e681fbc-video-1
03d210d4-6055-4774-8add-44cadaf7808c-1'/><parameter name='cname'
value='qeRpGY3QDUOGojC-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3559099469'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/06e731fc'/><parameter name='msid' value='06e731fc-video-1
b217b137-e899-42ab-a209-7ebf7b3044a1-1'/><parameter name='cname'
value='Cre8sQsjVHzzrz4P-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2618561412'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/06e731fc'/><parameter name='msid' value='06e731fc-video-1
b217b137-e899-42ab-a209-7ebf7b3044a1-1'/><parameter name='cname'
value='Cre8sQsjVHzzrz4P-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1273860780'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/463fbc94'/><parameter name='msid' value='463fbc94-video-1
99566524-41c0-4dd2-9004-f8bd6bc6262a-1'/><parameter name='cname'
value='CsKXGb6nyVPPYY1-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3357785597'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/463fbc94'/><parameter name='msid' value='463fbc94-video-1
99566524-41c0-4dd2-9004-f8bd6bc6262a-1'/><parameter name='cname'
value='CsKXGb6nyVPPYY1-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='554377952'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/588c3b33'/><parameter name='msid' value='588c3b33-video-1
311e99b8-0377-487c-8b16-4ffd511043a3-1'/><parameter name='cname'
value='8yY4HOocHVaO8O-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1388298645'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/588c3b33'/><parameter name='msid' value='588c3b33-video-1
311e99b8-0377-487c-8b16-4ffd511043a3-1'/><parameter name='cname'
value='8yY4HOocHVaO8O-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1200945302'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3930ca65'/><parameter name='msid' value='3930ca65-video-1
73dabf1b-3ca6-4413-8687-d7dae33e2217-1'/><parameter name='cname'
value='Xy6BDxr9zpJIZFV2-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1785750961'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3930ca65'/><parameter name='msid' value='3930ca65-video-1
73dabf1b-3ca6-4413-8687-d7dae33e2217-1'/><parameter name='cname'
value='Xy6BDxr9zpJIZFV2-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2246969641'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/66ec8647'/><parameter name='msid' value='66ec8647-video-1
09421a9d-cdce-4647-999d-a080d812ed68-1'/><parameter name='cname'
value='nUJ3nIAdBrxTosxv-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4240926004'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/66ec8647'/><parameter name='msid' value='66ec8647-video-1
09421a9d-cdce-4647-999d-a080d812ed68-1'/><parameter name='cname'
value='nUJ3nIAdBrxTosxv-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3803149261'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/dea6a93f'/><parameter name='msid' value='dea6a93f-video-1
34f8be9a-3117-44bc-99cc-47ebd2dd7b40-1'/><parameter name='cname'
value='CclRvQwbDMOjphhZ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2560063994'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/dea6a93f'/><parameter name='msid' value='dea6a93f-video-1
34f8be9a-3117-44bc-99cc-47ebd2dd7b40-1'/><parameter name='cname'
value='CclRvQwbDMOjphhZ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='616089600'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/4399c5f5'/><parameter name='msid' value='4399c5f5-video-1
7c67620d-d753-42a5-ac01-890e758fa351-1'/><parameter name='cname'
value='Yu2A3XhpQ4CYek2-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='235636253'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/4399c5f5'/><parameter name='msid' value='4399c5f5-video-1
7c67620d-d753-42a5-ac01-890e758fa351-1'/><parameter name='cname'
value='Yu2A3XhpQ4CYek2-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4207516490'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/da77d2ac'/><parameter name='msid' value='da77d2ac-video-1
ac023180-cc70-474a-8f55-d2fdcdff21f9-1'/><parameter name='cname'
value='vjcfTL8B6ttUG-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='152291543'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/da77d2ac'/><parameter name='msid' value='da77d2ac-video-1
ac023180-cc70-474a-8f55-d2fdcdff21f9-1'/><parameter name='cname'
value='vjcfTL8B6ttUG-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2453111233'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/338dec57'/><parameter name='msid' value='338dec57-video-1
0fe804f9-ef2a-44d4-8c83-31d9a7526d11-1'/><parameter name='cname'
value='QAdzsDdm0IpRMeLL-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2039007375'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/338dec57'/><parameter name='msid' value='338dec57-video-1
0fe804f9-ef2a-44d4-8c83-31d9a7526d11-1'/><parameter name='cname'
value='QAdzsDdm0IpRMeLL-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3583793967'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/7b73c3f9'/><parameter name='msid' value='7b73c3f9-video-1
e70fd55a-b079-4bdf-a9b8-18981cdb658b-1'/><parameter name='cname'
value='ikMu4UJnbWkcIYCY-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='732088695'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/7b73c3f9'/><parameter name='msid' value='7b73c3f9-video-1
e70fd55a-b079-4bdf-a9b8-18981cdb658b-1'/><parameter name='cname'
value='ikMu4UJnbWkcIYCY-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3731858352'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/84cb59d6'/><parameter name='msid' value='84cb59d6-video-1
353d7829-1c47-4d2f-bc2e-b178b880d0b3-1'/><parameter name='cname'
value='Z5tQcESvCUkZzVbg-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2267864287'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/84cb59d6'/><parameter name='msid' value='84cb59d6-video-1
353d7829-1c47-4d2f-bc2e-b178b880d0b3-1'/><parameter name='cname'
value='Z5tQcESvCUkZzVbg-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1065113629'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e6a877ab'/><parameter name='msid' value='e6a877ab-video-1
c0141c22-b413-44e7-8085-704ed5da9f65-1'/><parameter name='cname'
value='OfHnApTvZo8Cicfd-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='381868655'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e6a877ab'/><parameter name='msid' value='e6a877ab-video-1
c0141c22-b413-44e7-8085-704ed5da9f65-1'/><parameter name='cname'
value='OfHnApTvZo8Cicfd-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3930368107'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/008a157e'/><parameter name='msid' value='008a157e-video-1
1b3a1c56-bc95-40d7-90bd-9fcd210319ab-1'/><parameter name='cname'
value='66eGfjkdW7ULVNLE-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2726213294'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/008a157e'/><parameter name='msid' value='008a157e-video-1
1b3a1c56-bc95-40d7-90bd-9fcd210319ab-1'/><parameter name='cname'
value='66eGfjkdW7ULVNLE-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3830526418'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/03ff740a'/><parameter name='msid' value='03ff740a-video-1
75392150-286c-4cc3-913f-bf110ee0afea-1'/><parameter name='cname'
value='sqeO0DCYwuTMWy1s-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2721533034'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/03ff740a'/><parameter name='msid' value='03ff740a-video-1
75392150-286c-4cc3-913f-bf110ee0afea-1'/><parameter name='cname'
value='sqeO0DCYwuTMWy1s-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2095042043'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/664a0b12'/><parameter name='msid' value='664a0b12-video-1
ce5d8b4a-6697-4c8d-8239-7c9e6192fa8c-1'/><parameter name='cname'
value='W7qJTuypGZKMHNgx-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='223185938'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/664a0b12'/><parameter name='msid' value='664a0b12-video-1
ce5d8b4a-6697-4c8d-8239-7c9e6192fa8c-1'/><parameter name='cname'
value='W7qJTuypGZKMHNgx-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4114349775'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/0ad9c40e'/><parameter name='msid' value='0ad9c40e-video-1
5ed3e093-2603-40db-82bf-997ee0b5a668-1'/><parameter name='cname'
value='Af6qryKF0l0B8acp-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3416584216'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/0ad9c40e'/><parameter name='msid' value='0ad9c40e-video-1
5ed3e093-2603-40db-82bf-997ee0b5a668-1'/><parameter name='cname'
value='Af6qryKF0l0B8acp-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3546125626'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/75d2507b'/><parameter name='msid' value='75d2507b-video-1
638fe5d6-d910-466e-bdb6-1be02e00d8fe-1'/><parameter name='cname'
value='X70XWYgMsHJ3A6X-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4275720861'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/75d2507b'/><parameter name='msid' value='75d2507b-video-1
638fe5d6-d910-466e-bdb6-1be02e00d8fe-1'/><parameter name='cname'
value='X70XWYgMsHJ3A6X-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2849160119'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2a63c9ed'/><parameter name='msid' value='2a63c9ed-video-1
1fc75f8d-ba15-4131-b423-2a1cb1437418-1'/><parameter name='cname'
value='5ohO3mFeoLi4HTAp-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='19842401'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2a63c9ed'/><parameter name='msid' value='2a63c9ed-video-1
1fc75f8d-ba15-4131-b423-2a1cb1437418-1'/><parameter name='cname'
value='5ohO3mFeoLi4HTAp-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4184327517'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9baba8e4'/><parameter name='msid' value='9baba8e4-video-1
f110cf9c-d482-4ee2-81c8-d59919461bf8-1'/><parameter name='cname'
value='XysoJ4ISp0ZESsx-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1979308626'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9baba8e4'/><parameter name='msid' value='9baba8e4-video-1
f110cf9c-d482-4ee2-81c8-d59919461bf8-1'/><parameter name='cname'
value='XysoJ4ISp0ZESsx-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1092704580'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/6df4fa59'/><parameter name='msid' value='6df4fa59-video-1
6a43033a-35fb-4279-8ef1-a11e05f44526-1'/><parameter name='cname'
value='tKA6dnEWDYqcUTI-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='742020947'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/6df4fa59'/><parameter name='msid' value='6df4fa59-video-1
6a43033a-35fb-4279-8ef1-a11e05f44526-1'/><parameter name='cname'
value='tKA6dnEWDYqcUTI-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1239515533'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/b21e059c'/><parameter name='msid' value='b21e059c-video-1
7b3f0042-e609-4305-bbba-878e6be05b17-1'/><parameter name='cname'
value='NfamSsgAukxAaYH-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2278342033'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/b21e059c'/><parameter name='msid' value='b21e059c-video-1
7b3f0042-e609-4305-bbba-878e6be05b17-1'/><parameter name='cname'
value='NfamSsgAukxAaYH-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2752062135'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ed812ca3'/><parameter name='msid' value='ed812ca3-video-1
f7a6a2b7-4335-4c03-af62-a264cbb0a61e-1'/><parameter name='cname'
value='pw4TZogBJ3t6JRi-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1950152010'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ed812ca3'/><parameter name='msid' value='ed812ca3-video-1
f7a6a2b7-4335-4c03-af62-a264cbb0a61e-1'/><parameter name='cname'
value='pw4TZogBJ3t6JRi-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2081929843'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/c2d2bd42'/><parameter name='msid' value='c2d2bd42-video-1
4783e6c0-2dd6-4e07-a485-5eacdcdfc41d-1'/><parameter name='cname'
value='m8U1d14RMqVeTbK-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='744378933'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/c2d2bd42'/><parameter name='msid' value='c2d2bd42-video-1
4783e6c0-2dd6-4e07-a485-5eacdcdfc41d-1'/><parameter name='cname'
value='m8U1d14RMqVeTbK-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1868178777'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/df16730e'/><parameter name='msid' value='df16730e-video-1
174a468b-660e-495a-8d4d-e886c95d73ec-1'/><parameter name='cname'
value='3WNmy4rvzBgw4md-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='222926375'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/df16730e'/><parameter name='msid' value='df16730e-video-1
174a468b-660e-495a-8d4d-e886c95d73ec-1'/><parameter name='cname'
value='3WNmy4rvzBgw4md-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1759633408'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/7ca9acc3'/><parameter name='msid' value='7ca9acc3-video-1
e6912a26-4ac1-4b7f-b3e0-e2db1daf75c7-1'/><parameter name='cname'
value='N5bsHPClE3nS2IcI-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3928318851'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/7ca9acc3'/><parameter name='msid' value='7ca9acc3-video-1
e6912a26-4ac1-4b7f-b3e0-e2db1daf75c7-1'/><parameter name='cname'
value='N5bsHPClE3nS2IcI-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='231074132'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/d05acce0'/><parameter name='msid' value='d05acce0-video-1
b6391fe6-d33e-4ea6-8277-2c6f8f9c5a1d-1'/><parameter name='cname'
value='iAqkyP9AnnXikCA-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2423643475'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/d05acce0'/><parameter name='msid' value='d05acce0-video-1
b6391fe6-d33e-4ea6-8277-2c6f8f9c5a1d-1'/><parameter name='cname'
value='iAqkyP9AnnXikCA-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3947652095'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/616c0f0b'/><parameter name='msid' value='616c0f0b-video-1
07c6dea5-c125-4ed2-bf69-8bb654cc1677-1'/><parameter name='cname'
value='kuXE0tJdm19dkqX-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='65853670'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/616c0f0b'/><parameter name='msid' value='616c0f0b-video-1
07c6dea5-c125-4ed2-bf69-8bb654cc1677-1'/><parameter name='cname'
value='kuXE0tJdm19dkqX-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2393966391'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/84016eeb'/><parameter name='msid' value='84016eeb-video-1
f6064561-b57f-46b6-9506-bc46ff643c7a-1'/><parameter name='cname'
value='h5XQezHPNgSEgCDo-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1894664057'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/84016eeb'/><parameter name='msid' value='84016eeb-video-1
f6064561-b57f-46b6-9506-bc46ff643c7a-1'/><parameter name='cname'
value='h5XQezHPNgSEgCDo-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='503251398'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3388bc91'/><parameter name='msid' value='3388bc91-video-1
8dc395a3-661a-4c28-884e-5a95d3b46d82-1'/><parameter name='cname'
value='BEkdYT55FRjZe33-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1977988222'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3388bc91'/><parameter name='msid' value='3388bc91-video-1
8dc395a3-661a-4c28-884e-5a95d3b46d82-1'/><parameter name='cname'
value='BEkdYT55FRjZe33-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2135116204'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/5f8e48c6'/><parameter name='msid' value='5f8e48c6-video-1
b404607e-f5ff-46bf-ba59-efcd574d1d7a-1'/><parameter name='cname'
value='RgxykvgrADYjE-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1873025614'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/5f8e48c6'/><parameter name='msid' value='5f8e48c6-video-1
b404607e-f5ff-46bf-ba59-efcd574d1d7a-1'/><parameter name='cname'
value='RgxykvgrADYjE-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='654102872'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/297184fa'/><parameter name='msid' value='297184fa-video-1
0740ad87-8405-47d0-b0cb-45013fbf780b-1'/><parameter name='cname'
value='8tltej9P7Yq3pguF-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3934405125'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/297184fa'/><parameter name='msid' value='297184fa-video-1
0740ad87-8405-47d0-b0cb-45013fbf780b-1'/><parameter name='cname'
value='8tltej9P7Yq3pguF-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2845452697'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/0fb72764'/><parameter name='msid' value='0fb72764-video-1
27cf55d7-6500-4f0c-aae2-4c471ae58a8e-1'/><parameter name='cname'
value='0GQnEwEblBgNxgPK-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2554090264'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/0fb72764'/><parameter name='msid' value='0fb72764-video-1
27cf55d7-6500-4f0c-aae2-4c471ae58a8e-1'/><parameter name='cname'
value='0GQnEwEblBgNxgPK-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='594682183'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/7bc9814a'/><parameter name='msid' value='7bc9814a-video-1
f0a16c0d-ee0c-4412-99d0-24e4e422d016-1'/><parameter name='cname'
value='syJWarVktV77VJ4l-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='736131149'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/7bc9814a'/><parameter name='msid' value='7bc9814a-video-1
f0a16c0d-ee0c-4412-99d0-24e4e422d016-1'/><parameter name='cname'
value='syJWarVktV77VJ4l-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='636955628'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/44f003fc'/><parameter name='msid' value='44f003fc-video-1
512017ac-a7be-4f73-9afc-dd2932861f62-1'/><parameter name='cname'
value='BQjavkiw7uVqWqtG-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3956394895'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/44f003fc'/><parameter name='msid' value='44f003fc-video-1
512017ac-a7be-4f73-9afc-dd2932861f62-1'/><parameter name='cname'
value='BQjavkiw7uVqWqtG-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2410472888'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/704edd06'/><parameter name='msid' value='704edd06-video-1
d6d7c02e-7526-4576-ba95-4e9a7251047d-1'/><parameter name='cname'
value='W7lmduyiYpvvvUGB-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3637029718'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/704edd06'/><parameter name='msid' value='704edd06-video-1
d6d7c02e-7526-4576-ba95-4e9a7251047d-1'/><parameter name='cname'
value='W7lmduyiYpvvvUGB-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4217476927'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/31f1f4f6'/><parameter name='msid' value='31f1f4f6-video-1
e1396f1f-8889-4a25-9ccc-667e2db1c659-1'/><parameter name='cname'
value='w3CdgU7RQ0Yz18d1-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='603075498'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/31f1f4f6'/><parameter name='msid' value='31f1f4f6-video-1
e1396f1f-8889-4a25-9ccc-667e2db1c659-1'/><parameter name='cname'
value='w3CdgU7RQ0Yz18d1-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2663940109'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a9cded26'/><parameter name='msid' value='a9cded26-video-1
25e48160-c6ea-4616-aeac-3c38852d9cee-1'/><parameter name='cname'
value='BCHXEqeLcalscHa-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3269419682'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a9cded26'/><parameter name='msid' value='a9cded26-video-1
25e48160-c6ea-4616-aeac-3c38852d9cee-1'/><parameter name='cname'
value='BCHXEqeLcalscHa-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='517628721'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/b82bb576'/><parameter name='msid' value='b82bb576-video-1
0628d573-34f8-47a2-918e-565478f3345a-1'/><parameter name='cname'
value='1ibCFiyEUSZjT9Uk-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1326509198'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/b82bb576'/><parameter name='msid' value='b82bb576-video-1
0628d573-34f8-47a2-918e-565478f3345a-1'/><parameter name='cname'
value='1ibCFiyEUSZjT9Uk-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2918316143'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/f658d85e'/><parameter name='msid' value='f658d85e-video-1
1c2137ba-5b5b-4d89-beb4-cafe0984af64-1'/><parameter name='cname'
value='XvztGfp46V8NXj7-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2935022569'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/f658d85e'/><parameter name='msid' value='f658d85e-video-1
1c2137ba-5b5b-4d89-beb4-cafe0984af64-1'/><parameter name='cname'
value='XvztGfp46V8NXj7-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='631081928'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/b6a96078'/><parameter name='msid' value='b6a96078-video-1
d2b96518-f4b6-4096-a17d-f5ee91c411d2-1'/><parameter name='cname'
value='SdGsgVR7QDNVqP9-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='37774423'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/b6a96078'/><parameter name='msid' value='b6a96078-video-1
d2b96518-f4b6-4096-a17d-f5ee91c411d2-1'/><parameter name='cname'
value='SdGsgVR7QDNVqP9-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1049995573'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/5479e422'/><parameter name='msid' value='5479e422-video-1
afe9c84d-a947-4fe4-b0ff-4664b3b18c7e-1'/><parameter name='cname'
value='hVz3RYApArZIv7k-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='465957827'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/5479e422'/><parameter name='msid' value='5479e422-video-1
afe9c84d-a947-4fe4-b0ff-4664b3b18c7e-1'/><parameter name='cname'
value='hVz3RYApArZIv7k-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1453053856'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/5fc2d807'/><parameter name='msid' value='5fc2d807-video-1
e35b1662-f3bf-4e0b-97a2-4737403ae68a-1'/><parameter name='cname'
value='biXzbe8ozbmP2Pn-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='810451065'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/5fc2d807'/><parameter name='msid' value='5fc2d807-video-1
e35b1662-f3bf-4e0b-97a2-4737403ae68a-1'/><parameter name='cname'
value='biXzbe8ozbmP2Pn-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1269655687'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ba118dc8'/><parameter name='msid' value='ba118dc8-video-1
3a6bb287-3b34-44df-bcc6-c542b52f7079-1'/><parameter name='cname'
value='SQfNh8e9Uhut3Pg-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4164802827'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ba118dc8'/><parameter name='msid' value='ba118dc8-video-1
3a6bb287-3b34-44df-bcc6-c542b52f7079-1'/><parameter name='cname'
value='SQfNh8e9Uhut3Pg-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2646089017'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a9422c2a'/><parameter name='msid' value='a9422c2a-video-1
07cb09a9-f0d2-491a-879d-c547a7b47a16-1'/><parameter name='cname'
value='8VVO5U0LSjlWdXIt-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3365614966'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a9422c2a'/><parameter name='msid' value='a9422c2a-video-1
07cb09a9-f0d2-491a-879d-c547a7b47a16-1'/><parameter name='cname'
value='8VVO5U0LSjlWdXIt-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3319751910'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/bd64dcfd'/><parameter name='msid' value='bd64dcfd-video-1
6a4703e4-bc04-4d3f-bfe3-d6d9079da0d1-1'/><parameter name='cname'
value='fQdN0CNq9CePc26-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='105405063'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/bd64dcfd'/><parameter name='msid' value='bd64dcfd-video-1
6a4703e4-bc04-4d3f-bfe3-d6d9079da0d1-1'/><parameter name='cname'
value='fQdN0CNq9CePc26-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3588381061'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/4ecd9563'/><parameter name='msid' value='4ecd9563-video-1
a15fa08d-53cb-4f74-84c7-caf83e4474d0-1'/><parameter name='cname'
value='6QiTL2dW6ziIuYdB-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='728814314'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/4ecd9563'/><parameter name='msid' value='4ecd9563-video-1
a15fa08d-53cb-4f74-84c7-caf83e4474d0-1'/><parameter name='cname'
value='6QiTL2dW6ziIuYdB-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='568249723'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2ac169dd'/><parameter name='msid' value='2ac169dd-video-1
a57585c4-ab65-47fb-8177-883d23236a5f-1'/><parameter name='cname'
value='iwLdOUrcQB5IOUht-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2447455707'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2ac169dd'/><parameter name='msid' value='2ac169dd-video-1
a57585c4-ab65-47fb-8177-883d23236a5f-1'/><parameter name='cname'
value='iwLdOUrcQB5IOUht-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3071970738'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9fb7b49d'/><parameter name='msid' value='9fb7b49d-video-1
90f23e04-2e16-4b1d-8507-e2d96ec61b70-1'/><parameter name='cname'
value='I7fWxKvav7aU8bQ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3770065851'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9fb7b49d'/><parameter name='msid' value='9fb7b49d-video-1
90f23e04-2e16-4b1d-8507-e2d96ec61b70-1'/><parameter name='cname'
value='I7fWxKvav7aU8bQ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1667159414'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/12201f6c'/><parameter name='msid' value='12201f6c-video-1
90b41c66-4802-44fd-b6c2-6d1394205652-1'/><parameter name='cname'
value='DfvQv9DKLtL6HM4I-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='917429350'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/12201f6c'/><parameter name='msid' value='12201f6c-video-1
90b41c66-4802-44fd-b6c2-6d1394205652-1'/><parameter name='cname'
value='DfvQv9DKLtL6HM4I-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='465815555'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/7e4fa133'/><parameter name='msid' value='7e4fa133-video-1
5941f07a-c32c-4a4b-b67c-11e0df61a56d-1'/><parameter name='cname'
value='2lfxT6SqA70WNijm-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='724741293'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/7e4fa133'/><parameter name='msid' value='7e4fa133-video-1
5941f07a-c32c-4a4b-b67c-11e0df61a56d-1'/><parameter name='cname'
value='2lfxT6SqA70WNijm-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3839939485'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/62f0c2ef'/><parameter name='msid' value='62f0c2ef-video-1
17d7438a-5dfb-412e-a27b-382341ecb2d6-1'/><parameter name='cname'
value='4CwxGAKeIBwfQ3L-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='816606059'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/62f0c2ef'/><parameter name='msid' value='62f0c2ef-video-1
17d7438a-5dfb-412e-a27b-382341ecb2d6-1'/><parameter name='cname'
value='4CwxGAKeIBwfQ3L-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='740118046'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/25de2afb'/><parameter name='msid' value='25de2afb-video-1
545087c6-def0-4103-b502-14dd1606c5a4-1'/><parameter name='cname'
value='cX9vYqSkCVj3RDZ3-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2839057001'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/25de2afb'/><parameter name='msid' value='25de2afb-video-1
545087c6-def0-4103-b502-14dd1606c5a4-1'/><parameter name='cname'
value='cX9vYqSkCVj3RDZ3-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='912894784'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/664dad12'/><parameter name='msid' value='664dad12-video-1
aeb880ac-0550-4f9f-9741-24f972c53101-1'/><parameter name='cname'
value='ZuLlo1EDSSuSmAC-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='876744393'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/664dad12'/><parameter name='msid' value='664dad12-video-1
aeb880ac-0550-4f9f-9741-24f972c53101-1'/><parameter name='cname'
value='ZuLlo1EDSSuSmAC-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2333352120'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/d5db0294'/><parameter name='msid' value='d5db0294-video-1
45ed5741-8aa3-4022-9618-a1ddea494474-1'/><parameter name='cname'
value='10d8mRqZ4ovhQjJl-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2737118594'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/d5db0294'/><parameter name='msid' value='d5db0294-video-1
45ed5741-8aa3-4022-9618-a1ddea494474-1'/><parameter name='cname'
value='10d8mRqZ4ovhQjJl-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2483587304'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e1b1393e'/><parameter name='msid' value='e1b1393e-video-1
ca0f6eed-0be5-4aef-a6e0-d8ab8d6ae25e-1'/><parameter name='cname'
value='a5hXpeAQ3MCmPeTh-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='110847769'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e1b1393e'/><parameter name='msid' value='e1b1393e-video-1
ca0f6eed-0be5-4aef-a6e0-d8ab8d6ae25e-1'/><parameter name='cname'
value='a5hXpeAQ3MCmPeTh-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='183424003'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e20953ac'/><parameter name='msid' value='e20953ac-video-1
efcc1d3c-19ac-4ecd-becb-7c5cea6e59a2-1'/><parameter name='cname'
value='NUoLNM0spf1vp2Bn-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3676778145'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e20953ac'/><parameter name='msid' value='e20953ac-video-1
efcc1d3c-19ac-4ecd-becb-7c5cea6e59a2-1'/><parameter name='cname'
value='NUoLNM0spf1vp2Bn-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3372404065'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/c6b3ee53'/><parameter name='msid' value='c6b3ee53-video-1
65d69148-3255-4197-8c37-9224891b9577-1'/><parameter name='cname'
value='DDJwzjBEZuJryK7x-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4064033092'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/c6b3ee53'/><parameter name='msid' value='c6b3ee53-video-1
65d69148-3255-4197-8c37-9224891b9577-1'/><parameter name='cname'
value='DDJwzjBEZuJryK7x-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='449894393'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/4518a6bc'/><parameter name='msid' value='4518a6bc-video-1
bd166cf8-25ce-4548-a7d3-4e3616acbea3-1'/><parameter name='cname'
value='Z8nccj48A8uBNYsy-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1629641164'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/4518a6bc'/><parameter name='msid' value='4518a6bc-video-1
bd166cf8-25ce-4548-a7d3-4e3616acbea3-1'/><parameter name='cname'
value='Z8nccj48A8uBNYsy-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2462951135'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9b6555f4'/><parameter name='msid' value='9b6555f4-video-1
e605954b-4821-450d-9bb8-6c0c78ff6420-1'/><parameter name='cname'
value='ibvYr4kTYo2KIMJ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1317214014'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9b6555f4'/><parameter name='msid' value='9b6555f4-video-1
e605954b-4821-450d-9bb8-6c0c78ff6420-1'/><parameter name='cname'
value='ibvYr4kTYo2KIMJ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3023016227'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/45d85159'/><parameter name='msid' value='45d85159-video-1
1bd90178-c225-4df8-9601-5325e5ef82fb-1'/><parameter name='cname'
value='oEQ2oJFlOitfaqnw-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1352440439'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/45d85159'/><parameter name='msid' value='45d85159-video-1
1bd90178-c225-4df8-9601-5325e5ef82fb-1'/><parameter name='cname'
value='oEQ2oJFlOitfaqnw-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3394916758'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/fc6b38ae'/><parameter name='msid' value='fc6b38ae-video-1
7daa2439-2e06-44b4-8c62-c3198b5af244-1'/><parameter name='cname'
value='JILLhTULPFv5jHD-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2185692046'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/fc6b38ae'/><parameter name='msid' value='fc6b38ae-video-1
7daa2439-2e06-44b4-8c62-c3198b5af244-1'/><parameter name='cname'
value='JILLhTULPFv5jHD-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2619523950'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/5e07cc25'/><parameter name='msid' value='5e07cc25-video-1
5cdd2194-2445-484c-9b86-b5c2f7ac088e-1'/><parameter name='cname'
value='4Oh5M2qD6IkcTh6t-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2442691405'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/5e07cc25'/><parameter name='msid' value='5e07cc25-video-1
5cdd2194-2445-484c-9b86-b5c2f7ac088e-1'/><parameter name='cname'
value='4Oh5M2qD6IkcTh6t-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='535377707'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e9ef2bd6'/><parameter name='msid' value='e9ef2bd6-video-1
4a924c2a-336f-4e00-9fd4-5ebc4329bdd1-1'/><parameter name='cname'
value='JtT6b4ehTpHlZqbb-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2539605964'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e9ef2bd6'/><parameter name='msid' value='e9ef2bd6-video-1
4a924c2a-336f-4e00-9fd4-5ebc4329bdd1-1'/><parameter name='cname'
value='JtT6b4ehTpHlZqbb-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='668297216'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/17d6b8f9'/><parameter name='msid' value='17d6b8f9-video-1
c0bcdbb0-140c-484c-9814-96ff6154cb0d-1'/><parameter name='cname'
value='96sK2bIsDpCWOaqo-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3539516498'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/17d6b8f9'/><parameter name='msid' value='17d6b8f9-video-1
c0bcdbb0-140c-484c-9814-96ff6154cb0d-1'/><parameter name='cname'
value='96sK2bIsDpCWOaqo-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1063061863'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e7b25ed9'/><parameter name='msid' value='e7b25ed9-video-1
dd973fcf-5fcc-43a3-834e-dc292127cbd1-1'/><parameter name='cname'
value='KkR6mSjclQDMO86j-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='81953572'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e7b25ed9'/><parameter name='msid' value='e7b25ed9-video-1
dd973fcf-5fcc-43a3-834e-dc292127cbd1-1'/><parameter name='cname'
value='KkR6mSjclQDMO86j-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1115752331'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/f9467e4a'/><parameter name='msid' value='f9467e4a-video-1
831add48-007a-4b75-8332-84ed0560e484-1'/><parameter name='cname'
value='ItGndLAkumOF4oB-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1835169012'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/f9467e4a'/><parameter name='msid' value='f9467e4a-video-1
831add48-007a-4b75-8332-84ed0560e484-1'/><parameter name='cname'
value='ItGndLAkumOF4oB-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3858372404'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/87c64ced'/><parameter name='msid' value='87c64ced-video-1
30046146-2163-4229-aece-34435341425b-1'/><parameter name='cname'
value='AYFeM0W6rMAAVyy1-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2374182552'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/87c64ced'/><parameter name='msid' value='87c64ced-video-1
30046146-2163-4229-aece-34435341425b-1'/><parameter name='cname'
value='AYFeM0W6rMAAVyy1-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3122710332'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3669d0d6'/><parameter name='msid' value='3669d0d6-video-1
c27d52bb-f541-4bb7-8180-51a3870110de-1'/><parameter name='cname'
value='eFibAdbwL7COswuC-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='79297323'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3669d0d6'/><parameter name='msid' value='3669d0d6-video-1
c27d52bb-f541-4bb7-8180-51a3870110de-1'/><parameter name='cname'
value='eFibAdbwL7COswuC-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='70689401'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/21dba72c'/><parameter name='msid' value='21dba72c-video-1
e6d66d5d-18f1-438c-9aef-21b51bfcb535-1'/><parameter name='cname'
value='CdBdi9xzW56cAnYH-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='75005281'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/21dba72c'/><parameter name='msid' value='21dba72c-video-1
e6d66d5d-18f1-438c-9aef-21b51bfcb535-1'/><parameter name='cname'
value='CdBdi9xzW56cAnYH-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2747241565'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/6dc1de67'/><parameter name='msid' value='6dc1de67-video-1
5fd11f96-624e-4d20-84a1-bf69bc854e7c-1'/><parameter name='cname'
value='EbFWvB65GEp0EneL-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1649388205'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/6dc1de67'/><parameter name='msid' value='6dc1de67-video-1
5fd11f96-624e-4d20-84a1-bf69bc854e7c-1'/><parameter name='cname'
value='EbFWvB65GEp0EneL-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2294437763'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3c253135'/><parameter name='msid' value='3c253135-video-1
e7834643-efb3-459d-aa0b-59817eb9ffe2-1'/><parameter name='cname'
value='og9UrIo3I4SIUOQ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='843847884'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3c253135'/><parameter name='msid' value='3c253135-video-1
e7834643-efb3-459d-aa0b-59817eb9ffe2-1'/><parameter name='cname'
value='og9UrIo3I4SIUOQ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='246787722'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/6ca86c9c'/><parameter name='msid' value='6ca86c9c-video-1
92f952d8-db90-41e6-9cdb-98dc05543481-1'/><parameter name='cname'
value='zfYJ45JsrKUnJbHJ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='815922374'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/6ca86c9c'/><parameter name='msid' value='6ca86c9c-video-1
92f952d8-db90-41e6-9cdb-98dc05543481-1'/><parameter name='cname'
value='zfYJ45JsrKUnJbHJ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3972388089'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/376640b5'/><parameter name='msid' value='376640b5-video-1
66c8e57f-651f-45a8-8947-c65c094e2cf6-1'/><parameter name='cname'
value='1Q5JBc3lpgOaxTpf-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3426997603'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/376640b5'/><parameter name='msid' value='376640b5-video-1
66c8e57f-651f-45a8-8947-c65c094e2cf6-1'/><parameter name='cname'
value='1Q5JBc3lpgOaxTpf-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3700924276'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/aaf10fa3'/><parameter name='msid' value='aaf10fa3-video-1
8bca1152-d0ed-4c87-8889-97de326f172e-1'/><parameter name='cname'
value='JLieIBFyrVqhUxO-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2729876244'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/aaf10fa3'/><parameter name='msid' value='aaf10fa3-video-1
8bca1152-d0ed-4c87-8889-97de326f172e-1'/><parameter name='cname'
value='JLieIBFyrVqhUxO-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1319931042'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/fd974671'/><parameter name='msid' value='fd974671-video-1
33103621-242f-42df-87f0-c29566ec0cd2-1'/><parameter name='cname'
value='y9Idxs6Hl02dRTWD-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2203814427'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/fd974671'/><parameter name='msid' value='fd974671-video-1
33103621-242f-42df-87f0-c29566ec0cd2-1'/><parameter name='cname'
value='y9Idxs6Hl02dRTWD-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3558126725'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8f6efdf5'/><parameter name='msid' value='8f6efdf5-video-1
1a7f866f-ba10-43ab-8f53-b15a53442608-1'/><parameter name='cname'
value='hnwM6XN4TFqODtqp-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='588307175'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8f6efdf5'/><parameter name='msid' value='8f6efdf5-video-1
1a7f866f-ba10-43ab-8f53-b15a53442608-1'/><parameter name='cname'
value='hnwM6XN4TFqODtqp-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2589984915'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e9ae48ca'/><parameter name='msid' value='e9ae48ca-video-1
c4aeb894-cdd3-420e-b47a-e58bcc35626e-1'/><parameter name='cname'
value='1I0k0K2p0BTz1HOT-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='768348422'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e9ae48ca'/><parameter name='msid' value='e9ae48ca-video-1
c4aeb894-cdd3-420e-b47a-e58bcc35626e-1'/><parameter name='cname'
value='1I0k0K2p0BTz1HOT-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2798874686'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/41fca3cf'/><parameter name='msid' value='41fca3cf-video-1
2e19739e-3896-487b-b61e-5d77931c8630-1'/><parameter name='cname'
value='yBmYWsxh8X4OCRP8-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='387587209'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/41fca3cf'/><parameter name='msid' value='41fca3cf-video-1
2e19739e-3896-487b-b61e-5d77931c8630-1'/><parameter name='cname'
value='yBmYWsxh8X4OCRP8-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1548973254'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9f103542'/><parameter name='msid' value='9f103542-video-1
be2694e9-6498-4575-aecd-69605c6e1bca-1'/><parameter name='cname'
value='47W5fY8a7H1S8cUn-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1152415094'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/9f103542'/><parameter name='msid' value='9f103542-video-1
be2694e9-6498-4575-aecd-69605c6e1bca-1'/><parameter name='cname'
value='47W5fY8a7H1S8cUn-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='238289159'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a7599ecf'/><parameter name='msid' value='a7599ecf-video-1
2a75153b-72b0-41b6-a562-5024ae985c83-1'/><parameter name='cname'
value='ZqgHME4OlBNY8AJ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3891384315'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a7599ecf'/><parameter name='msid' value='a7599ecf-video-1
2a75153b-72b0-41b6-a562-5024ae985c83-1'/><parameter name='cname'
value='ZqgHME4OlBNY8AJ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4137173163'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/18226ad9'/><parameter name='msid' value='18226ad9-video-1
e798a155-1b6d-4b65-ab99-692d851bdb36-1'/><parameter name='cname'
value='wH2gL3R1VitkdfKr-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1149554787'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/18226ad9'/><parameter name='msid' value='18226ad9-video-1
e798a155-1b6d-4b65-ab99-692d851bdb36-1'/><parameter name='cname'
value='wH2gL3R1VitkdfKr-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='294136787'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/1c1b82ec'/><parameter name='msid' value='1c1b82ec-video-1
06d54571-3042-43a2-8d77-8899f893db23-1'/><parameter name='cname'
value='O6E3uZNjsj4yS8m-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2443603228'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/1c1b82ec'/><parameter name='msid' value='1c1b82ec-video-1
06d54571-3042-43a2-8d77-8899f893db23-1'/><parameter name='cname'
value='O6E3uZNjsj4yS8m-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2377132622'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/fb55d3a2'/><parameter name='msid' value='fb55d3a2-video-1
b56cf6fa-0ee2-40c8-97e6-434129e0c84a-1'/><parameter name='cname'
value='IG8BOowlW9zTAf-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2374791808'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/fb55d3a2'/><parameter name='msid' value='fb55d3a2-video-1
b56cf6fa-0ee2-40c8-97e6-434129e0c84a-1'/><parameter name='cname'
value='IG8BOowlW9zTAf-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='711533387'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/07d093ca'/><parameter name='msid' value='07d093ca-video-1
6beea424-187b-4bc8-8ed3-df0eb9a66426-1'/><parameter name='cname'
value='4war5IhTR4jLaok-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3050407253'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/07d093ca'/><parameter name='msid' value='07d093ca-video-1
6beea424-187b-4bc8-8ed3-df0eb9a66426-1'/><parameter name='cname'
value='4war5IhTR4jLaok-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1051494361'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/f71babd2'/><parameter name='msid' value='f71babd2-video-1
5d79af67-9c9a-4bf3-a379-d6ee1046161b-1'/><parameter name='cname'
value='xMzI9yYDCf2NTgJ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1872530557'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/f71babd2'/><parameter name='msid' value='f71babd2-video-1
5d79af67-9c9a-4bf3-a379-d6ee1046161b-1'/><parameter name='cname'
value='xMzI9yYDCf2NTgJ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='583996940'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/d9459d76'/><parameter name='msid' value='d9459d76-video-1
5257f31c-b8cb-4416-92cb-14a311d814ed-1'/><parameter name='cname'
value='tj5pwtrgnNHSpZk2-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1573481543'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/d9459d76'/><parameter name='msid' value='d9459d76-video-1
5257f31c-b8cb-4416-92cb-14a311d814ed-1'/><parameter name='cname'
value='tj5pwtrgnNHSpZk2-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3073484381'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/147ed139'/><parameter name='msid' value='147ed139-video-1
cc2edf14-2c06-4fbb-9c94-9d2d3dd72333-1'/><parameter name='cname'
value='ZQEMmAKBQpFhRhW-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1030092590'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/147ed139'/><parameter name='msid' value='147ed139-video-1
cc2edf14-2c06-4fbb-9c94-9d2d3dd72333-1'/><parameter name='cname'
value='ZQEMmAKBQpFhRhW-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1633781461'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ea1ccb12'/><parameter name='msid' value='ea1ccb12-video-1
fe94ae06-f2c5-4d54-b1d9-5a716eedf8cf-1'/><parameter name='cname'
value='QZf5awA47fTyk25y-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1446373498'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ea1ccb12'/><parameter name='msid' value='ea1ccb12-video-1
fe94ae06-f2c5-4d54-b1d9-5a716eedf8cf-1'/><parameter name='cname'
value='QZf5awA47fTyk25y-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3901943290'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2163cb6d'/><parameter name='msid' value='2163cb6d-video-1
b3faa147-20ed-4f50-8303-b5d2ddb6f3ec-1'/><parameter name='cname'
value='j87PBCUS1uZllU-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='677223549'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2163cb6d'/><parameter name='msid' value='2163cb6d-video-1
b3faa147-20ed-4f50-8303-b5d2ddb6f3ec-1'/><parameter name='cname'
value='j87PBCUS1uZllU-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3185903630'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/c64e8748'/><parameter name='msid' value='c64e8748-video-1
1dff3516-8b5f-4eba-8cf0-cd3d88a8472f-1'/><parameter name='cname'
value='wMtL7uxWG5RFS-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2700839352'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/c64e8748'/><parameter name='msid' value='c64e8748-video-1
1dff3516-8b5f-4eba-8cf0-cd3d88a8472f-1'/><parameter name='cname'
value='wMtL7uxWG5RFS-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1403657245'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/d38f2f9a'/><parameter name='msid' value='d38f2f9a-video-1
a0f5a42f-fc79-479e-b596-1b45b33ba0d9-1'/><parameter name='cname'
value='w331mWtpTnEQCpiw-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2844649295'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/d38f2f9a'/><parameter name='msid' value='d38f2f9a-video-1
a0f5a42f-fc79-479e-b596-1b45b33ba0d9-1'/><parameter name='cname'
value='w331mWtpTnEQCpiw-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1953705063'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a33ceeeb'/><parameter name='msid' value='a33ceeeb-video-1
d1ebc8c1-68ef-47ab-9fdd-8da0b5abd776-1'/><parameter name='cname'
value='TFQrT6RrvOWZKkS-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='718679999'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/a33ceeeb'/><parameter name='msid' value='a33ceeeb-video-1
d1ebc8c1-68ef-47ab-9fdd-8da0b5abd776-1'/><parameter name='cname'
value='TFQrT6RrvOWZKkS-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2590857165'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2f44ea82'/><parameter name='msid' value='2f44ea82-video-1
4194f9ca-12a1-401b-91ee-c20b6fcc3e83-1'/><parameter name='cname'
value='UYPF7gYI5yr4t5R-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1701398992'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/2f44ea82'/><parameter name='msid' value='2f44ea82-video-1
4194f9ca-12a1-401b-91ee-c20b6fcc3e83-1'/><parameter name='cname'
value='UYPF7gYI5yr4t5R-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1574169188'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ac115977'/><parameter name='msid' value='ac115977-video-1
8a5f8db0-d67a-46af-9538-bc4db6f7ecc2-1'/><parameter name='cname'
value='eKa0ZFfz2lFEK79A-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3092763435'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/ac115977'/><parameter name='msid' value='ac115977-video-1
8a5f8db0-d67a-46af-9538-bc4db6f7ecc2-1'/><parameter name='cname'
value='eKa0ZFfz2lFEK79A-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2984741928'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3a9635b3'/><parameter name='msid' value='3a9635b3-video-1
fff9d4f1-ee98-492a-8af1-52dbdce787f5-1'/><parameter name='cname'
value='zK5G56jbDWp2o9mE-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='535986199'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3a9635b3'/><parameter name='msid' value='3a9635b3-video-1
fff9d4f1-ee98-492a-8af1-52dbdce787f5-1'/><parameter name='cname'
value='zK5G56jbDWp2o9mE-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='898921014'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/7889ddbf'/><parameter name='msid' value='7889ddbf-video-1
95d1f404-d365-492c-981b-cfb54d7c22f7-1'/><parameter name='cname'
value='hiWhKjN9OdRLBtN-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2698658474'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/7889ddbf'/><parameter name='msid' value='7889ddbf-video-1
95d1f404-d365-492c-981b-cfb54d7c22f7-1'/><parameter name='cname'
value='hiWhKjN9OdRLBtN-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1385718562'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/dd1d3f4e'/><parameter name='msid' value='dd1d3f4e-video-1
1bb41743-b95c-42b7-9def-eccae6cd46f0-1'/><parameter name='cname'
value='FVAuERZcVxxXYDsF-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2968946095'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/dd1d3f4e'/><parameter name='msid' value='dd1d3f4e-video-1
1bb41743-b95c-42b7-9def-eccae6cd46f0-1'/><parameter name='cname'
value='FVAuERZcVxxXYDsF-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1542394160'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/67b8c08d'/><parameter name='msid' value='67b8c08d-video-1
b1322808-71f0-4737-9c26-080d6103d2ef-1'/><parameter name='cname'
value='C6RH2qYT6XQuMzV9-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1807814503'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/67b8c08d'/><parameter name='msid' value='67b8c08d-video-1
b1322808-71f0-4737-9c26-080d6103d2ef-1'/><parameter name='cname'
value='C6RH2qYT6XQuMzV9-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1954085633'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/25f60ea8'/><parameter name='msid' value='25f60ea8-video-1
b9878914-269d-49ff-b02e-245e78e9ab63-1'/><parameter name='cname'
value='1adcTQbpV4XIWEwl-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2302467655'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/25f60ea8'/><parameter name='msid' value='25f60ea8-video-1
b9878914-269d-49ff-b02e-245e78e9ab63-1'/><parameter name='cname'
value='1adcTQbpV4XIWEwl-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2491495375'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/47ce9205'/><parameter name='msid' value='47ce9205-video-1
606f51f7-251b-46f7-8fd0-8af63690ba6e-1'/><parameter name='cname'
value='1ShvL4GcMayUsBb2-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2951528026'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/47ce9205'/><parameter name='msid' value='47ce9205-video-1
606f51f7-251b-46f7-8fd0-8af63690ba6e-1'/><parameter name='cname'
value='1ShvL4GcMayUsBb2-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='32658792'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e80ed5ee'/><parameter name='msid' value='e80ed5ee-video-1
03ba9b41-da9d-4aca-a65a-3d83a8e7ea5b-1'/><parameter name='cname'
value='iJUifbredY4DL40s-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3391401360'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/e80ed5ee'/><parameter name='msid' value='e80ed5ee-video-1
03ba9b41-da9d-4aca-a65a-3d83a8e7ea5b-1'/><parameter name='cname'
value='iJUifbredY4DL40s-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3051372874'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/f32efc0b'/><parameter name='msid' value='f32efc0b-video-1
31df8a71-cdd7-4423-9734-22e884970032-1'/><parameter name='cname'
value='67GtYhEhXASCfge4-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4267181937'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/f32efc0b'/><parameter name='msid' value='f32efc0b-video-1
31df8a71-cdd7-4423-9734-22e884970032-1'/><parameter name='cname'
value='67GtYhEhXASCfge4-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='832738875'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/6d4fa0e0'/><parameter name='msid' value='6d4fa0e0-video-1
a25490fb-ed8d-42ea-9f55-5e5efe0617ad-1'/><parameter name='cname'
value='CxduQZdp0IgTX1BK-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3285556115'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/6d4fa0e0'/><parameter name='msid' value='6d4fa0e0-video-1
a25490fb-ed8d-42ea-9f55-5e5efe0617ad-1'/><parameter name='cname'
value='CxduQZdp0IgTX1BK-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1576622277'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/eafe5875'/><parameter name='msid' value='eafe5875-video-1
d0fc2928-01bb-4b43-b28f-7f90500446d8-1'/><parameter name='cname'
value='3ygo7BbxCoNqoUa-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3924404756'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/eafe5875'/><parameter name='msid' value='eafe5875-video-1
d0fc2928-01bb-4b43-b28f-7f90500446d8-1'/><parameter name='cname'
value='3ygo7BbxCoNqoUa-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='305447788'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/542f107b'/><parameter name='msid' value='542f107b-video-1
d72a74bb-81a0-4c02-93d4-be425ea6776e-1'/><parameter name='cname'
value='JtoBjsXEFYIWP6q3-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1946244851'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/542f107b'/><parameter name='msid' value='542f107b-video-1
d72a74bb-81a0-4c02-93d4-be425ea6776e-1'/><parameter name='cname'
value='JtoBjsXEFYIWP6q3-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1791644292'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/86d0f2f5'/><parameter name='msid' value='86d0f2f5-video-1
fe2a2f0e-751a-4496-ab94-e45bdc326791-1'/><parameter name='cname'
value='0mRLjsbAOVVPBS-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1056615636'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/86d0f2f5'/><parameter name='msid' value='86d0f2f5-video-1
fe2a2f0e-751a-4496-ab94-e45bdc326791-1'/><parameter name='cname'
value='0mRLjsbAOVVPBS-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='319776807'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/fc8d6a2a'/><parameter name='msid' value='fc8d6a2a-video-1
f672fae6-a6fe-48e3-9fb4-8bb2714dee93-1'/><parameter name='cname'
value='q2pzGMnpsADh3LhK-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3270289050'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/fc8d6a2a'/><parameter name='msid' value='fc8d6a2a-video-1
f672fae6-a6fe-48e3-9fb4-8bb2714dee93-1'/><parameter name='cname'
value='q2pzGMnpsADh3LhK-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1755943940'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/51deb82b'/><parameter name='msid' value='51deb82b-video-1
9ecaedce-1baf-4e81-b067-c8ecb5231e8b-1'/><parameter name='cname'
value='GQjnf9T8ZuLDZ9x-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1316063909'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/51deb82b'/><parameter name='msid' value='51deb82b-video-1
9ecaedce-1baf-4e81-b067-c8ecb5231e8b-1'/><parameter name='cname'
value='GQjnf9T8ZuLDZ9x-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2966816699'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3aaef3dc'/><parameter name='msid' value='3aaef3dc-video-1
fb4ecda2-8f6f-4855-8d00-41af0a775869-1'/><parameter name='cname'
value='9HfbVB6ET08MxaM-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3919408217'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3aaef3dc'/><parameter name='msid' value='3aaef3dc-video-1
fb4ecda2-8f6f-4855-8d00-41af0a775869-1'/><parameter name='cname'
value='9HfbVB6ET08MxaM-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2403407442'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/32e07936'/><parameter name='msid' value='32e07936-video-1
0e76d890-df17-4106-b3cc-a22f524bb8fd-1'/><parameter name='cname'
value='KfKLXEcxFiuu8j-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='371033303'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/32e07936'/><parameter name='msid' value='32e07936-video-1
0e76d890-df17-4106-b3cc-a22f524bb8fd-1'/><parameter name='cname'
value='KfKLXEcxFiuu8j-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='128043626'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/19c48d7e'/><parameter name='msid' value='19c48d7e-video-2
1d4d276a-c958-42e0-a733-d20bb4376789-2'/><parameter name='cname'
value='t0OYwt19udFvILKz-2'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='4201795723'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/19c48d7e'/><parameter name='msid' value='19c48d7e-video-2
1d4d276a-c958-42e0-a733-d20bb4376789-2'/><parameter name='cname'
value='t0OYwt19udFvILKz-2'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='503758656'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/455c4e6e'/><parameter name='msid' value='455c4e6e-video-1
506abbab-05e7-4bff-81d7-2a305d96b72d-1'/><parameter name='cname'
value='6LYi6b2FwxD9ntGV-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3544522749'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/455c4e6e'/><parameter name='msid' value='455c4e6e-video-1
506abbab-05e7-4bff-81d7-2a305d96b72d-1'/><parameter name='cname'
value='6LYi6b2FwxD9ntGV-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2685717106'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/aeecaf09'/><parameter name='msid' value='aeecaf09-video-1
c8749fd0-e762-495f-8c5c-8cbfb4a3fc0f-1'/><parameter name='cname'
value='3ED0ruC5XM6kVgnz-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='163465171'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/aeecaf09'/><parameter name='msid' value='aeecaf09-video-1
c8749fd0-e762-495f-8c5c-8cbfb4a3fc0f-1'/><parameter name='cname'
value='3ED0ruC5XM6kVgnz-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3683562532'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/0b442629'/><parameter name='msid' value='0b442629-video-1
fcdd7aea-5644-41a0-bf0c-9aaad4d5d745-1'/><parameter name='cname'
value='8NFomLFKqh4RTjzQ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1082420770'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/0b442629'/><parameter name='msid' value='0b442629-video-1
fcdd7aea-5644-41a0-bf0c-9aaad4d5d745-1'/><parameter name='cname'
value='8NFomLFKqh4RTjzQ-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1136562776'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3093232d'/><parameter name='msid' value='3093232d-video-1
a1963045-ce30-4787-8005-7fa9f53f3d12-1'/><parameter name='cname'
value='qcPvQ0sPJlu3FoLs-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3307007485'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3093232d'/><parameter name='msid' value='3093232d-video-1
a1963045-ce30-4787-8005-7fa9f53f3d12-1'/><parameter name='cname'
value='qcPvQ0sPJlu3FoLs-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2847127036'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/82c8b1e4'/><parameter name='msid' value='82c8b1e4-video-1
11f49eea-cf08-46d4-bd5a-33e0bb6a4411-1'/><parameter name='cname'
value='gLInYpPDoHWs42J-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3133558941'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/82c8b1e4'/><parameter name='msid' value='82c8b1e4-video-1
11f49eea-cf08-46d4-bd5a-33e0bb6a4411-1'/><parameter name='cname'
value='gLInYpPDoHWs42J-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='3421207240'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8f484b7d'/><parameter name='msid' value='8f484b7d-video-1
3ad6006e-08c2-4517-a76a-c8b18f1fe734-1'/><parameter name='cname'
value='UNn6lCLVHHKJ6Piq-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2875371788'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/8f484b7d'/><parameter name='msid' value='8f484b7d-video-1
3ad6006e-08c2-4517-a76a-c8b18f1fe734-1'/><parameter name='cname'
value='UNn6lCLVHHKJ6Piq-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='509370798'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/fd08d826'/><parameter name='msid' value='fd08d826-video-1
44f21c00-a03d-4419-9fb4-5af7f3c79e54-1'/><parameter name='cname'
value='qoyRrkvMifSJH7af-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2582194735'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/fd08d826'/><parameter name='msid' value='fd08d826-video-1
44f21c00-a03d-4419-9fb4-5af7f3c79e54-1'/><parameter name='cname'
value='qoyRrkvMifSJH7af-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='697279727'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/646a4695'/><parameter name='msid' value='646a4695-video-1
856bdf27-aa84-49b7-b93c-6033dabd361c-1'/><parameter name='cname'
value='IVvYH2GtTVgakl-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1566265642'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/646a4695'/><parameter name='msid' value='646a4695-video-1
856bdf27-aa84-49b7-b93c-6033dabd361c-1'/><parameter name='cname'
value='IVvYH2GtTVgakl-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='486149823'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/85685425'/><parameter name='msid' value='85685425-video-1
13fa19cd-0c73-47ba-bdb2-23451f4bb661-1'/><parameter name='cname'
value='A6voyc6wTw0ju6-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='103129402'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/85685425'/><parameter name='msid' value='85685425-video-1
13fa19cd-0c73-47ba-bdb2-23451f4bb661-1'/><parameter name='cname'
value='A6voyc6wTw0ju6-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='89540513'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3c6e38f6'/><parameter name='msid' value='3c6e38f6-video-1
ff637be4-88d9-44b0-a244-57b805f67e65-1'/><parameter name='cname'
value='xWLUW961h87I401s-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2624259447'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3c6e38f6'/><parameter name='msid' value='3c6e38f6-video-1
ff637be4-88d9-44b0-a244-57b805f67e65-1'/><parameter name='cname'
value='xWLUW961h87I401s-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='704352187'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/d3dc233b'/><parameter name='msid' value='d3dc233b-video-1
b9729b7a-15c9-46f3-81a6-89f1ad62eeee-1'/><parameter name='cname'
value='ElOuWOb5wx7Y3Aqr-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2068480696'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/d3dc233b'/><parameter name='msid' value='d3dc233b-video-1
b9729b7a-15c9-46f3-81a6-89f1ad62eeee-1'/><parameter name='cname'
value='ElOuWOb5wx7Y3Aqr-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='2106663381'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3b8bc092'/><parameter name='msid' value='3b8bc092-video-1
0e499b90-c578-446d-bdd7-2d1bb3167afa-1'/><parameter name='cname'
value='YidIGnrScZXgNC8-1'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
ssrc='1079996039'><ssrc-info xmlns='http://jitsi.org/jitmeet'
owner='loadtest0@conference.example.com/3b8bc092'/><parameter name='msid' value='3b8bc092-video-1
0e499b90-c578-446d-bdd7-2d1bb3167afa-1'/><parameter name='cname'
value='YidIGnrScZXgNC8-1'/></source><ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'
semantics='FID'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3061637266'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2334295712'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2449273099'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1898950798'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='866214649'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='388396566'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='923496315'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2531188077'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4161484420'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2760369944'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2672591233'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3960713133'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2461655640'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2852028166'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1767345327'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='501735278'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3059770944'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1517306582'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4019240166'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1261846490'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2826415547'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1650496975'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4053101965'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1371049993'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2877754998'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1205498400'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='833492476'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='593900983'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='306405540'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3033351177'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4061349084'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='48958389'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='676846785'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1281857133'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2727820600'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4092026770'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3101806842'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2114803266'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1992363352'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1647971405'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3595796030'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2600691471'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1792792996'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='993195403'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='82148077'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='657317605'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='120296323'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3204037080'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1696357701'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='67688246'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2698790147'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4119513018'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='284736749'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2235349421'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2983878818'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='371229755'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3861532374'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3466193822'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2549851790'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1744426489'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='917675089'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2381564406'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1702641816'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='562572309'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1038427283'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2998000941'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1361401156'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='394441607'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3085630869'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3767130458'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='58961431'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='795376870'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2893839303'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1189114128'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2256823801'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2084638456'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='952645665'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2850679869'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3464124200'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='282197457'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2416491423'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='690127855'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2933990695'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1479734661'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3501107951'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='769943275'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3661764338'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3419874079'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2321966727'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4130135169'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4094467496'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='25224679'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='881766685'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2520436648'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1762655065'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2995923072'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3787702567'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4259299453'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2899885446'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2453434189'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3900087522'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3198711409'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1869488397'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3463369947'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2085959572'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2094406127'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='476318847'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4133143639'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3875634630'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='743784598'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='899527434'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2084418901'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1269882900'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1824732256'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1549060418'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2985534507'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3915745999'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2958515017'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3132583719'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1114771761'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4247270964'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2742294269'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2212500456'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2004845454'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1621753796'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3873410378'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4260529622'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='124397040'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1055626548'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4105491785'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2138032592'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='958397055'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3413273770'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='175639581'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='536916073'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1332847778'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='987342671'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2888879998'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='414637003'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1324318327'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2189156150'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1299433078'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2316785730'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2064123002'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3673885017'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1499316776'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1260086740'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='873157891'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='233061626'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1222851408'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2784965'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4245285065'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1577954381'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='254910277'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2595011221'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4198622749'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2857899626'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='775555243'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1624788562'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2210289623'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1210897492'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2125834362'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3112890413'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3254307000'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1095567018'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3249312017'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1233830395'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2002581344'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3949273998'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3686939208'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3475387208'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3200464902'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1358090659'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1275965776'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3399072917'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3719198800'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3456249411'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2170305701'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1477028783'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1339306522'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3543067378'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1294804268'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1874214355'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1679600615'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3696336965'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1219983756'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='778512217'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='133627610'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1107532463'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3675864008'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='895838973'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3829559843'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1059330401'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='516449173'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='724822713'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4258625471'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='568458139'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3756351127'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1050031550'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1585839800'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1339629948'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='272537448'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3855370878'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2839482785'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3695303859'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1195053194'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1700681367'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='496170042'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2830699346'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3893152951'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3079307631'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2567351783'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3705023124'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2860557671'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='107481829'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='369777588'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='270546831'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='334155182'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3834868177'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3195638015'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2440806148'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4283883363'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3564177345'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='904812922'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='381401815'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2116550699'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1233201320'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1190562824'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3764503183'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1092010801'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3346647120'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3894611406'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1400096367'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2899786031'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2178146442'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3420967681'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3518349100'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2207993559'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='300639962'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4022114853'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1902047528'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3226167335'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3723347104'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1430498867'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1063094944'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3836894812'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='223861026'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1264113980'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3361450204'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='226535599'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3653760233'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4033738988'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2121199325'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='543638123'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1407826520'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2783558865'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2573267194'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2096637453'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3996542192'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1772261054'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='127847477'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1597023702'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1149316204'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2291508728'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3086733646'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='24367976'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1173555167'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='533350787'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3736750019'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2385051398'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3559099469'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2618561412'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1273860780'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3357785597'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='554377952'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1388298645'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1200945302'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1785750961'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2246969641'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4240926004'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3803149261'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2560063994'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='616089600'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='235636253'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4207516490'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='152291543'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2453111233'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2039007375'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3583793967'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='732088695'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3731858352'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2267864287'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1065113629'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='381868655'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3930368107'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2726213294'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3830526418'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2721533034'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2095042043'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='223185938'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4114349775'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3416584216'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3546125626'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4275720861'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2849160119'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='19842401'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4184327517'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1979308626'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1092704580'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='742020947'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1239515533'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2278342033'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2752062135'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1950152010'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2081929843'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='744378933'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1868178777'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='222926375'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1759633408'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3928318851'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='231074132'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2423643475'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3947652095'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='65853670'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2393966391'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1894664057'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='503251398'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1977988222'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2135116204'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1873025614'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='654102872'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3934405125'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2845452697'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2554090264'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='594682183'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='736131149'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='636955628'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3956394895'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2410472888'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3637029718'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4217476927'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='603075498'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2663940109'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3269419682'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='517628721'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1326509198'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2918316143'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2935022569'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='631081928'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='37774423'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1049995573'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='465957827'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1453053856'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='810451065'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1269655687'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4164802827'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2646089017'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3365614966'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3319751910'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='105405063'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3588381061'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='728814314'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='568249723'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2447455707'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3071970738'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3770065851'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1667159414'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='917429350'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='465815555'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='724741293'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3839939485'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='816606059'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='740118046'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2839057001'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='912894784'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='876744393'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2333352120'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2737118594'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2483587304'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='110847769'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='183424003'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3676778145'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3372404065'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4064033092'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='449894393'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1629641164'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2462951135'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1317214014'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3023016227'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1352440439'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3394916758'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2185692046'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2619523950'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2442691405'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='535377707'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2539605964'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='668297216'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3539516498'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1063061863'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='81953572'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1115752331'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1835169012'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3858372404'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2374182552'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3122710332'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='79297323'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='70689401'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='75005281'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2747241565'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1649388205'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2294437763'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='843847884'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='246787722'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='815922374'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3972388089'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3426997603'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3700924276'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2729876244'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1319931042'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2203814427'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3558126725'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='588307175'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2589984915'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='768348422'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2798874686'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='387587209'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1548973254'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1152415094'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='238289159'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3891384315'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4137173163'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1149554787'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='294136787'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2443603228'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2377132622'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2374791808'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='711533387'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3050407253'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1051494361'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1872530557'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='583996940'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1573481543'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3073484381'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1030092590'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1633781461'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1446373498'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3901943290'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='677223549'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3185903630'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2700839352'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1403657245'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2844649295'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1953705063'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='718679999'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2590857165'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1701398992'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1574169188'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3092763435'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2984741928'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='535986199'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='898921014'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2698658474'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1385718562'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2968946095'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1542394160'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1807814503'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1954085633'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2302467655'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2491495375'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2951528026'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='32658792'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3391401360'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3051372874'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4267181937'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='832738875'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3285556115'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1576622277'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3924404756'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='305447788'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1946244851'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1791644292'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1056615636'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='319776807'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3270289050'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1755943940'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1316063909'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2966816699'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3919408217'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2403407442'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='371033303'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='128043626'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4201795723'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='503758656'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3544522749'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2685717106'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='163465171'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3683562532'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1082420770'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1136562776'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3307007485'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2847127036'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3133558941'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3421207240'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2875371788'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='509370798'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2582194735'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='697279727'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1566265642'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='486149823'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='103129402'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='89540513'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2624259447'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='704352187'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2068480696'/></ssrc-group><ssrc-group
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2106663381'/><source
xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1079996039'/></ssrc-group></description><transport
xmlns='urn:xmpp:jingle:transports:ice-udp:1' pwd='f667da89d0froosolnkd29rfr'
ufrag='210bltna1fdanrtsu'><web-socket xmlns='http://jitsi.org/protocol/colibri'
url='wss://example-com-us-west-2b-s7-jvb-74-72-210.example.com:443/colibri-ws/default-id/255b0900f17cdd9e/63653b5f?pwd=f667da89d0froosolnkd29rfr'/><rtcp-mux/><fingerprint
xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' required='false'
setup='actpass'>AE:D4:A8:99:38:9A:9A:D7:63:7E:CE:12:A9:90:B1:49:3D:C9:3C:E0:DF:66:87:D6:76:B7:7A:68:85:B4:BF:BE</fingerprint><candidate
xmlns='urn:xmpp:jingle:transports:ice-udp:1' network='0' id='71b70c8b5a5117d9024a1280e'
protocol='udp' component='1' priority='2130706431' port='10000' ip='10.74.72.210' type='host'
generation='0' foundation='1'/><candidate xmlns='urn:xmpp:jingle:transports:ice-udp:1' network='0'
id='2057cc035a5117d90ffffffff9be9a78b' protocol='udp' component='1' priority='1694498815'
port='10000' ip='129.146.200.79' type='srflx' rel-port='10000' foundation='2' generation='0'
rel-addr='10.74.72.210'/></transport></content><group xmlns='urn:xmpp:jingle:apps:grouping:0'
semantics='BUNDLE'><content name='audio'/><content name='video'/></group><startmuted
xmlns='http://jitsi.org/jitmeet/start-muted' audio='true' video='false'/><bridge-session
xmlns='http://jitsi.org/protocol/focus' id='46122_3438f0' region='us-west-2'/></jingle></iq>
"#;

fn short_document(c: &mut Criterion) {
	c.bench_function("short_document", |bench| {
		let doc = b"<?xml version='1.0'?>\n<root xmlns='urn:uuid:fab98e86-7c09-477c-889c-0313d9877bb4' a=\"foo\" b='bar'><child>with some text</child></root>";
		let mut evs = Vec::with_capacity(1024);

		bench.iter(|| {
			evs.clear();
			let mut doc = &doc[..];
			let mut p = Reader::<_>::new(black_box(&mut doc));
			assert!(p.read_all_eof(|ev| {
				evs.push(ev);
			}).unwrap());
		});
	});
}

fn huge_document(c: &mut Criterion) {
	let mut group = c.benchmark_group("huge_document");

	group.bench_function("singleuse_pull", |b| {
		let mut evs = Vec::with_capacity(1024);

		b.iter(|| {
			evs.clear();
			let mut doc = &HUGE_STANZA[..];
			let mut p = Reader::<_>::new(&mut doc);
			assert!(p
				.read_all_eof(|ev| {
					evs.push(ev);
				})
				.unwrap());
		});
	});

	group.bench_function("singleuse_feed", |b| {
		let mut evs = Vec::with_capacity(1024);

		b.iter(|| {
			evs.clear();
			let mut p = Parser::default();
			p.parse_all(&mut &HUGE_STANZA[..], true, |ev| {
				evs.push(ev);
			})
			.unwrap();
		});
	});

	group.bench_function("streamed", |b| {
		let mut evs = Vec::with_capacity(1024);
		let mut p = Parser::default();
		match p.parse_all(&mut &b"<?xml version='1.0'?><root>"[..], false, |_| {}) {
			Err(rxml::error::EndOrError::NeedMoreData) => (),
			other => panic!("unexpected init result: {:?}", other),
		}

		b.iter(|| {
			evs.clear();
			match p.parse_all(&mut &HUGE_STANZA[..], false, |ev| {
				evs.push(ev);
			}) {
				Err(rxml::error::EndOrError::NeedMoreData) => (),
				other => unreachable!("unexpected result: {:?}", other),
			}
		});
	});
}

criterion_group! {
	name = benches;
	config = Criterion::default().sample_size(300);
	targets = short_document, huge_document
}
criterion_main!(benches);
