//! Images: multipart and raw uploads, the format from the bytes, 415 / 413 / 422 refusals,
//! metadata stripped, content-addressed storage with who uploaded what, immutable serving
//! from memory with ETags on every instance, the per-user upload limit, and image ids that
//! other records may reference.

use std::io::Cursor;

use bytes::Bytes;
use http::{Method, StatusCode};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use serde_json::json;
use zhifu::account::Role;

use crate::admin::{call, sign_in};
use crate::helpers::{Answer, TestApp, spawn_app, spawn_app_on, spawn_app_with};

pub(crate) fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

pub(crate) fn photo(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    }))
}

pub(crate) async fn upload_raw(app: &TestApp, token: &str, content_type: &str, bytes: Vec<u8>) -> Answer {
    let bearer = format!("Bearer {token}");
    app.request(
        Method::POST,
        "/api/images",
        &[("authorization", &bearer), ("content-type", content_type)],
        Bytes::from(bytes),
    )
    .await
}

/// A `multipart/form-data` body as `wx.uploadFile` sends it: a form field, then `file`.
async fn upload_multipart(app: &TestApp, token: &str, file: &[u8], declared: &str) -> Answer {
    let boundary = "----zhifu-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\navatar\r\n").as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"tmp_1.jpg\"\r\nContent-Type: {declared}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let bearer = format!("Bearer {token}");
    let content_type = format!("multipart/form-data; boundary={boundary}");
    app.request(
        Method::POST,
        "/api/images",
        &[("authorization", &bearer), ("content-type", &content_type)],
        Bytes::from(body),
    )
    .await
}

#[tokio::test]
async fn an_image_uploaded_as_multipart_and_as_raw_bytes_round_trips() {
    let app = spawn_app().await;
    let token = sign_in(&app, "uploader", Role::User).await;
    let jpeg = encoded(&photo(800, 600), ImageFormat::Jpeg);

    let multipart = upload_multipart(&app, &token, &jpeg, "image/jpeg").await;
    assert_eq!(multipart.status, StatusCode::CREATED, "{}", multipart.text());
    let created = multipart.json();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["url"], format!("/media/{id}"));
    assert_eq!(created["thumb_url"], format!("/media/{id}/thumb"));
    assert_eq!(
        (created["width"].as_i64(), created["height"].as_i64()),
        (Some(800), Some(600))
    );

    let served = app.get(&format!("/media/{id}")).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.header("content-type"), Some("image/jpeg"));
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &served.body);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, id, "the id is the SHA-256 of the stored bytes");
    assert_eq!(image::load_from_memory(&served.body).unwrap().width(), 800);
    let thumb = app.get(&format!("/media/{id}/thumb")).await;
    assert_eq!(thumb.status, StatusCode::OK);
    let small = image::load_from_memory(&thumb.body).unwrap();
    assert_eq!((small.width(), small.height()), (360, 270));

    // The same picture sent raw is the same stored image: one row, two uploads recorded.
    let raw = upload_raw(&app, &token, "image/jpeg", jpeg).await;
    assert_eq!(raw.status, StatusCode::CREATED, "{}", raw.text());
    assert_eq!(raw.json()["id"], id);
    assert_eq!(app.count("SELECT count(*) FROM images").await, 1);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM image_uploads u JOIN users s ON s.id = u.user_id
              WHERE u.image_id = '{id}' AND s.username = 'uploader' AND u.ip = '127.0.0.1'"
        ))
        .await,
        2
    );
    app.shutdown().await;
}

#[tokio::test]
async fn the_bytes_decide_the_format_and_what_is_not_an_image_is_refused() {
    let app = spawn_app().await;
    let token = sign_in(&app, "uploader", Role::User).await;
    let png = encoded(&photo(50, 40), ImageFormat::Png);

    let declared_jpeg = upload_raw(&app, &token, "image/jpeg", png.clone()).await;
    assert_eq!(declared_jpeg.status, StatusCode::CREATED, "{}", declared_jpeg.text());
    let id = declared_jpeg.json()["id"].as_str().unwrap().to_string();
    let served = app.get(&format!("/media/{id}")).await;
    assert_eq!(served.header("content-type"), Some("image/png"));
    assert_eq!(image::guess_format(&served.body).unwrap(), ImageFormat::Png);
    // Narrow images are their own thumbnail.
    assert_eq!(app.get(&format!("/media/{id}/thumb")).await.body, served.body);

    let text = upload_multipart(&app, &token, b"just some text\n", "image/png").await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(text.error_code(), "unsupported_image");
    let plain = upload_raw(&app, &token, "text/plain", b"hello".to_vec()).await;
    assert_eq!(plain.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(plain.error_code(), "unsupported_image");
    let no_file = upload_multipart(&app, &token, b"", "image/png").await;
    assert_eq!(no_file.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(app.count("SELECT count(*) FROM images").await, 1, "nothing else stored");

    let anonymous = app
        .request(
            Method::POST,
            "/api/images",
            &[("content-type", "image/png")],
            Bytes::from(png),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    app.shutdown().await;
}

#[tokio::test]
async fn a_small_png_of_huge_dimensions_is_refused_without_decoding() {
    let app = spawn_app().await;
    let token = sign_in(&app, "uploader", Role::User).await;
    let mut bomb = Vec::new();
    {
        let mut encoder = png::Encoder::new(Cursor::new(&mut bomb), 20_000, 20_000);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        encoder.set_compression(png::Compression::High);
        let mut header = encoder.write_header().unwrap();
        let mut writer = header.stream_writer().unwrap();
        let row = vec![0u8; 2500];
        for _ in 0..20_000 {
            std::io::Write::write_all(&mut writer, &row).unwrap();
        }
        writer.finish().unwrap();
    }
    assert!(bomb.len() < 100_000, "{} bytes", bomb.len());
    let answer = upload_raw(&app, &token, "image/png", bomb).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.text());
    assert_eq!(answer.error_code(), "image_too_large");
    assert_eq!(app.count("SELECT count(*) FROM images").await, 0);
    app.shutdown().await;
}

#[tokio::test]
async fn uploads_over_max_bytes_are_413_and_each_user_is_rate_limited() {
    let app = spawn_app_with(|s| {
        s.media.max_bytes = 20_000;
        s.media.uploads_per_minute = 2;
        s.media.upload_burst = 2;
    })
    .await;
    let alice = sign_in(&app, "alice", Role::User).await;
    let bob = sign_in(&app, "bob", Role::User).await;
    let noise = RgbImage::from_fn(200, 200, |x, y| {
        let h = (x * 7919 + y * 104_729).wrapping_mul(2_654_435_761);
        Rgb([(h >> 24) as u8, (h >> 16) as u8, (h >> 8) as u8])
    });
    let big = encoded(&DynamicImage::ImageRgb8(noise), ImageFormat::Png);
    assert!(big.len() > 20_000);
    let answer = upload_raw(&app, &alice, "image/png", big.clone()).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    let answer = upload_multipart(&app, &alice, &big, "image/png").await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);

    let small = encoded(&photo(10, 10), ImageFormat::Png);
    for _ in 0..2 {
        let answer = upload_raw(&app, &bob, "image/png", small.clone()).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    }
    let third = upload_raw(&app, &bob, "image/png", small.clone()).await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS, "bob spent his burst");
    assert!(third.header("retry-after").is_some());
    let carol = sign_in(&app, "carol", Role::User).await;
    let other = upload_raw(&app, &carol, "image/png", small).await;
    assert_eq!(other.status, StatusCode::CREATED, "carol has her own allowance");
    app.shutdown().await;
}

#[tokio::test]
async fn images_are_served_immutable_from_memory_with_etags_on_every_instance() {
    let a = spawn_app().await;
    let b = spawn_app_on(a.db.clone(), |_| {}).await;
    let token = sign_in(&a, "uploader", Role::User).await;
    let created = upload_raw(&a, &token, "image/png", encoded(&photo(400, 100), ImageFormat::Png)).await;
    let id = created.json()["id"].as_str().unwrap().to_string();
    let path = format!("/media/{id}");

    let first = b.get(&path).await;
    assert_eq!(first.status, StatusCode::OK, "another instance serves it");
    assert_eq!(
        first.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let etag = first.header("etag").unwrap().to_string();
    assert_eq!(etag, format!("\"{id}\""));

    let checkouts = b.state.store.checkouts();
    let again = b.get(&path).await;
    assert_eq!(again.body, first.body);
    let revalidated = b
        .request(Method::GET, &path, &[("if-none-match", &etag)], Bytes::new())
        .await;
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    assert!(revalidated.body.is_empty());
    assert_eq!(b.state.store.checkouts(), checkouts, "served from memory");

    let unknown = b.get(&format!("/media/{}", "0".repeat(64))).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(b.get("/media/not-an-id").await.status, StatusCode::NOT_FOUND);
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test]
async fn an_avatar_must_name_a_stored_image() {
    let app = spawn_app().await;
    let token = sign_in(&app, "alice", Role::User).await;
    let unknown = call(
        &app,
        &token,
        Method::PATCH,
        "/api/me",
        Some(json!({"avatar": "a".repeat(64)})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.error_code(), "unknown_image");
    let malformed = call(&app, &token, Method::PATCH, "/api/me", Some(json!({"avatar": "x.png"}))).await;
    assert_eq!(malformed.error_code(), "invalid_image");

    let created = upload_raw(&app, &token, "image/png", encoded(&photo(64, 64), ImageFormat::Png)).await;
    let id = created.json()["id"].as_str().unwrap().to_string();
    let set = call(&app, &token, Method::PATCH, "/api/me", Some(json!({"avatar": id}))).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    assert_eq!(set.json()["avatar_url"], format!("/media/{id}"));
    let cleared = call(&app, &token, Method::PATCH, "/api/me", Some(json!({"avatar": null}))).await;
    assert_eq!(cleared.json()["avatar_url"], serde_json::Value::Null);
    app.shutdown().await;
}
