//! Test fixtures made once outside this code base, so the tests cross-check against an
//! independent implementation. NOT real keys: a throw-away RSA key and self-signed
//! certificate made with the `openssl` 3.0 CLI, signatures made with `openssl dgst -sha256
//! -sign`, and an AES-256-GCM vector made with Python `cryptography` 48. Compiled for tests only.

/// `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`. A FAKE test key.
pub const PRIVATE_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDTWoCfqZ2OzcUE\n\
AOvKDUpcjzNcp57TRpUODIj1GwA6yDmSLXQL6wWIPDOZ1ZqmOukl9SNDbmwJsbGZ\n\
sMQDWZj9jgwWRoTTCiLFVP+LWoOPqGmmqQmNd8wZvAERetkFMsEFWQbSfXLConwN\n\
N86R5QNphXwm2jKsiIh8eVwQitag2PDMUbT32URuw5MUhox1cUOkYCQ36ikK3zGM\n\
EmaBGGj4BmG1n5PZkcycJ4sxebUYpjGGY2Di7cmA3nmdyNMiWoOHv/1qYri430V8\n\
yJ8TJ8ur3fIISw384F4JMVZSY3EkEPYS3PRNLEVCulGDDjGxTMvA8hMbWitf4ozI\n\
w33hTID3AgMBAAECggEAAhyfOLkvpKvOrPsQtWdLl8ArNwuft88L5zozK3Z2b/VB\n\
31bf7Xc5ihfGkOIZq6aJX4KNtHtHzhL99Mys22G2TcubuE9CaCoWQzArENU53Pdw\n\
Us976R4fe8mtSGOYrodyy/Rh7+bRUjuLD3DAJM9hKNlCGSXzUqusksh9pdaqoqxz\n\
liPdIWPxUXWASdClrzmx28BWxtHYjeNznKnjPRjKAczJPmUgQajXQsNYwmKkCVY+\n\
62ffkNosO4mXZoTECmnlm7y6ngxaa/31O/U3kUbRb86ryoQYdteOsCIWsFoaXjzn\n\
8+aVKTYWR/E7a6gYqdqmq7oL7T74yLr1ZIDHdRBr7QKBgQD6wdl7wXal06N9Oj9y\n\
6/we1xP92P9sUbl9BKaT/aUczjf/+Xdn7/0vLQvzNoCNvwAfECsqUx3FDHup370S\n\
IsXlrC+9W8Ai0gYaXXi/XRV+K/VvLFJJCjJZbBRTw7SczuHunrfYMIXMGeJBTaFU\n\
BolOpSOWDDm1MX9BLYHUEgd/+wKBgQDXxb+5iV23Z2WCvGVl0eTKD1qrOmGhyX/R\n\
BcKEya2jHMpj4SbPJfFMeA6vFdtXtH80J1SymMaqt5Dmw8ekY8Ah8VL+qXVg7MJn\n\
0OHx5HFIXk98NJBUxdf3krXfIqtrn4zpCTWR/teKBguXMPzuoIqY6b8d4Z8+lr0p\n\
ziRLEXNmNQKBgAnErW01vyJ8mRzSvRAEA2FMLZow7tpQYLJvEPIo6lqx6dqN5Enn\n\
PmytC48g62caLq4HGjde34UClHqsnZfsRNtKlt2Ain6Qwe4bAA4sWR7+JWR8TIRN\n\
4mI7ZJtSv2Fwabq68hx4321xALBcjtFQI98tbbJ1rXXShMuMM0eIoEQrAoGBALqK\n\
8RVjqA0OrBkZ7YPYsbbrDVUplQy9Wu6Hz0Lj5WU2V9d/6QB/6hxVU0SVXdt2Zd7d\n\
/gClymP/bZvEOQ5rWsk9jKY0NRGFvxDn6t8ow7NwLcHQ49MWdH9KbEgr/g1+k+FI\n\
n/LHYuqmDVE5/gID8679rsgTrov64DGLUZ9AyAbdAoGBALggl4KH81AlIgCGQYTT\n\
H1lKKroGupJpBL1RU5W86ztm50CvUgUqcx/ejgfekQXHqiMM71MChL0I6tbgYkbD\n\
435LFCxrZwcZwmT57Ht+PDI4/YkJTjegT+dANsamXfVcB8JPusFyn3rDvTuaLiCZ\n\
UwF6HmyWOs0kx/O9/MGoquCd\n\
-----END PRIVATE KEY-----\n\
";

/// `openssl req -x509 -new -key PRIVATE_KEY_PEM -sha256 -days 3650
/// -subj "/CN=zhifu test fixture - not a WeChat certificate"
/// -set_serial 0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1`.
pub const CERTIFICATE_PEM: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIDUTCCAjmgAwIBAgIUUVfwnv3Alt4V6+gaRwV6cjLxuOEwDQYJKoZIhvcNAQEL\n\
BQAwODE2MDQGA1UEAwwtemhpZnUgdGVzdCBmaXh0dXJlIC0gbm90IGEgV2VDaGF0\n\
IGNlcnRpZmljYXRlMB4XDTI2MTEyMTIyMTY0NFoXDTM2MTExODIyMTY0NFowODE2\n\
MDQGA1UEAwwtemhpZnUgdGVzdCBmaXh0dXJlIC0gbm90IGEgV2VDaGF0IGNlcnRp\n\
ZmljYXRlMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA01qAn6mdjs3F\n\
BADryg1KXI8zXKee00aVDgyI9RsAOsg5ki10C+sFiDwzmdWapjrpJfUjQ25sCbGx\n\
mbDEA1mY/Y4MFkaE0woixVT/i1qDj6hppqkJjXfMGbwBEXrZBTLBBVkG0n1ywqJ8\n\
DTfOkeUDaYV8JtoyrIiIfHlcEIrWoNjwzFG099lEbsOTFIaMdXFDpGAkN+opCt8x\n\
jBJmgRho+AZhtZ+T2ZHMnCeLMXm1GKYxhmNg4u3JgN55ncjTIlqDh7/9amK4uN9F\n\
fMifEyfLq93yCEsN/OBeCTFWUmNxJBD2Etz0TSxFQrpRgw4xsUzLwPITG1orX+KM\n\
yMN94UyA9wIDAQABo1MwUTAdBgNVHQ4EFgQUfk0HBoMhRcKQAaoAamTTJdbnJj4w\n\
HwYDVR0jBBgwFoAUfk0HBoMhRcKQAaoAamTTJdbnJj4wDwYDVR0TAQH/BAUwAwEB\n\
/zANBgkqhkiG9w0BAQsFAAOCAQEAOm85xmP5+BzOThPIMEkkoxnhVoIxI1DYbtQv\n\
Ggfiz1gwlx6Yu6hZOSJJPYdO6cbIY3yEjpQdLLSIGhPuY4mHi1PO/GTWHjLVv4/T\n\
Ioki3Y4RnBRcXW/+xabMOkVI92gJrwGsHN/tExZLGXr/2/Pr6pK4c0E2Xpg5k8D9\n\
ZAmjJIFVgUXwbNDwpxXgPyOW615t/6ynDKnsM0dv5mxUxT3D7fo1uYUqwEvVAAKV\n\
lPRFpgcSc/5nKU7uowIU1RH9+5yuoHvCQBuOj+4h3Qgxtn1Kmg2CBEbHBPsHIgM2\n\
ImciCJEF82isZnM07LPNafW0oGm20fdwCZJVN7FrqbvXaPpE/w==\n\
-----END CERTIFICATE-----\n\
";

/// The serial number of [`CERTIFICATE_PEM`] as `openssl x509 -serial` prints it.
pub const CERTIFICATE_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";

/// A request signing string: `METHOD\nPATH\nTIMESTAMP\nNONCE\nBODY\n`.
pub const REQUEST_MESSAGE: &str = "POST\n/v3/pay/transactions/native\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{\"appid\":\"wxd678efh567hg6787\",\"mchid\":\"1900000109\",\"description\":\"test\",\"out_trade_no\":\"1217752501201407033233368018\"}\n";
/// The timestamp, nonce and body inside [`REQUEST_MESSAGE`].
pub const REQUEST_TIMESTAMP: i64 = 1554208460;
pub const REQUEST_NONCE: &str = "593BEC0C930BF1AFEB40B4A08C8FB242";
pub const REQUEST_BODY: &str = "{\"appid\":\"wxd678efh567hg6787\",\"mchid\":\"1900000109\",\"description\":\"test\",\"out_trade_no\":\"1217752501201407033233368018\"}";
/// `openssl dgst -sha256 -sign PRIVATE_KEY_PEM | base64` over [`REQUEST_MESSAGE`].
pub const REQUEST_SIGNATURE: &str = "p8wZUH58s2+fZX85mr6h26D1SiOa4c6LIwztLlWIMtykKCJhM/gOUIftet4dEnLkk+orXkInY0OSA7CTxt77dSufzcM4xGpctmCz5P15kAQOv6e/dPpUTFxM+8MUnQurgR++oM++sOMcDf1HUE69kBGETN0emwUdE5gfidaAzx/61JOBYvpQv1S53QZTDiY9puhwiXJ6UrDrybej26IFp8Ta1591Usa34UP8tet0b+nC8avO04fTWYiEAmdlZFb6HYBZYw+y3shcvKsaVITDwGSt1ki+uGqTtsGTpMbv35TmXzo/H4cy/BxkWarHcmCxnlfyubtqGwLWovSPI8mpZw==";

/// An answer's timestamp, nonce and body; the signing string is `TS\nNONCE\nBODY\n`.
pub const ANSWER_TIMESTAMP: i64 = 1554209980;
pub const ANSWER_NONCE: &str = "c5ac7061fccab6bf3e254dcf98995b8c";
pub const ANSWER_BODY: &str = "{\"code_url\":\"weixin://wxpay/bizpayurl?pr=p4lpSuKzz\"}";
/// `openssl dgst -sha256 -sign PRIVATE_KEY_PEM | base64` over the answer's signing string.
pub const ANSWER_SIGNATURE: &str = "InbqMLFUmxMznrANKaS5GQ3/iE8aCg1O22aXBeWQoYy+YBJwHeXAlYFMhkGakGbSrwTstMbiznB4rF7AT1sLxXgTJLL5UoC7kthgadFY5Zfnp0ntt4TvNcyUS8Dzy36pCXrmOCZBjcg9Un8SsS/qZN95tTDXbDhjjYxwyxYW3d6tBQ8nvVrrZytx+rgjDuX9dbDchLW9Li9BFFNT7C/r1i8GBmx1fZu5ZO7hopElFl90fA+k7W14zTCTMdKEp8RjkLj+0drA/ndFLUGhnDGqrTlXMaxGrmrQCa5pj9p7Vo1dJcqwzJuVlJ8QQnV4iiQcgvYWN0q99AvURjzrCflKMg==";

/// A FAKE APIv3 key (32 ASCII bytes) and an AES-256-GCM vector sealed with it by Python
/// `cryptography`'s `AESGCM(key).encrypt(nonce, plaintext, aad)`, base64-encoded.
pub const API_V3_KEY: &[u8; 32] = b"zhifuTestApiV3KeyNotReal32Bytes!";
pub const GCM_NONCE: &str = "fixtureNonce";
pub const GCM_AAD: &str = "transaction";
pub const GCM_PLAINTEXT: &str = r#"{"mchid":"1900000109","appid":"wxd678efh567hg6787","out_trade_no":"1217752501201407033233368018","transaction_id":"4200000000202611210000000001","trade_state":"SUCCESS","success_time":"2026-11-21T22:15:00+08:00","amount":{"total":100,"currency":"CNY"}}"#;
pub const GCM_CIPHERTEXT: &str = "tG7hKQM55ud6YPNNQ5tZ1hWbyRBcwpV/HNETDoxpsKgnQf7Pa3WacZ4tciF8bxp+CUBJEL1yhMJiY/HDIJHpiCWvfLAznEx1UD7I+cP3rBCTZ8IbK725W67P5VoWK1tH1Wd1nrIUcmu4ADzY0hWsTjt7Q7U24FFSylhB7HOvJxneGndDct5vRLXn00DOvnAWklmi3lps+m34sEsHxvk1HSje6d7Pg8QLOsUqRCGWaJaaBgltkvVhpQhX7nknz1GL/LGtz2BvvS590BlnaADMDW1Ut+KyC5LZl3SJZG0sjoS3FXFXlr8hAtw0R7HFTN5irG29eciRNfImYG+tQnWAfe8zf3fM3LAbZOn1SA==";
