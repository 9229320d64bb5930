//! The name of the operation a proxied request calls, for the history: what CloudTrail would
//! call it, told from the request alone. The query protocols (STS, IAM, EC2, SQS, SNS…) name it
//! in `Action=` (query string or form body), the JSON protocols in `X-Amz-Target`
//! (`DynamoDB_20120810.GetItem`), and S3 by its method, path and sub-resource (newer SDKs also
//! add `x-id=GetObject`); anything else is `METHOD service`.

use http::request::Parts;

use super::sigv4::query_pairs;

/// The operation of a request signed for `service`; `form` is its body when that is a form
/// the proxy has read (the query protocols POST `Action=…`).
pub(super) fn name(parts: &Parts, service: &str, form: Option<&[u8]>) -> String {
    let query = query_pairs(parts.uri.query().unwrap_or(""));
    let param = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(target) = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        return target.rsplit('.').next().unwrap_or(target).to_string();
    }
    if service == "s3" {
        if let Some(op) = s3(parts, &query) {
            return op.to_string();
        }
    } else if let Some(action) = param("Action") {
        return action.to_string();
    } else if let Some(action) = form
        .map(|body| query_pairs(&String::from_utf8_lossy(body)))
        .and_then(|pairs| pairs.into_iter().find(|(n, _)| n == "Action"))
    {
        return action.1;
    }
    format!("{} {service}", parts.method)
}

/// Operations whose answer carries credentials or a login that outlive the run: access keys,
/// session or role credentials, federation tokens, console passwords, service-specific
/// credentials, OpenID tokens. The MFA session may be allowed some of them (IAM's
/// self-management policies allow `iam:CreateAccessKey` on one's own user), and what they hand
/// back would keep working after the command ends, which `--proxy` exists to prevent.
const MINTING: [&str; 15] = [
    // STS
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "AssumeRoot",
    "GetSessionToken",
    "GetFederationToken",
    // IAM
    "CreateAccessKey",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "CreateServiceSpecificCredential",
    "ResetServiceSpecificCredential",
    // Cognito identity pools
    "GetCredentialsForIdentity",
    "GetOpenIdToken",
    "GetOpenIdTokenForDeveloperIdentity",
    // IAM Identity Center's portal (GET /federation/credentials, see below)
    "GetRoleCredentials",
];

/// The operation a request would call that hands back credentials outliving the run, if any.
/// Every place a request can name its operation counts, not only the first the history reads:
/// each `Action=` in the query string and in a form body (the query protocols read either),
/// and `X-Amz-Target` (the JSON protocols: Cognito's `AWSCognitoIdentityService.GetOpenIdToken`,
/// STS's JSON form). IAM Identity Center's `GetRoleCredentials` is `GET /federation/credentials`.
pub(super) fn mints_credentials(
    parts: &Parts,
    service: &str,
    form: Option<&[u8]>,
) -> Option<String> {
    if service == "s3" {
        // S3 names no operation this way, and its keys are object names.
        return None;
    }
    let mut names: Vec<String> = query_pairs(parts.uri.query().unwrap_or(""))
        .into_iter()
        .chain(form.map_or_else(Vec::new, |body| query_pairs(&String::from_utf8_lossy(body))))
        .filter(|(n, _)| n.eq_ignore_ascii_case("Action"))
        .map(|(_, v)| v)
        .collect();
    for target in parts.headers.get_all("x-amz-target") {
        let target = String::from_utf8_lossy(target.as_bytes()).into_owned();
        names.push(target.rsplit('.').next().unwrap_or("").to_string());
    }
    if parts.uri.path().trim_end_matches('/') == "/federation/credentials" {
        names.push("GetRoleCredentials".to_string());
    }
    names.into_iter().find(|n| MINTING.contains(&n.trim()))
}

/// S3's common operations, from a path-style request (the proxy's endpoint is an IP address,
/// so the SDKs address buckets in the path).
fn s3(parts: &Parts, query: &[(String, String)]) -> Option<&'static str> {
    if let Some((_, id)) = query.iter().find(|(n, _)| n == "x-id") {
        return KNOWN.iter().copied().find(|k| k == id);
    }
    let has = |name: &str| query.iter().any(|(n, _)| n == name);
    let path = parts.uri.path().trim_start_matches('/');
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let copy = parts.headers.contains_key("x-amz-copy-source");
    let method = parts.method.as_str();
    Some(match (method, bucket.is_empty(), key.is_empty()) {
        ("GET", true, _) => "ListBuckets",
        (_, true, _) => return None,
        // The bucket itself.
        ("GET", false, true) if has("list-type") => "ListObjectsV2",
        ("GET", false, true) if has("location") => "GetBucketLocation",
        ("GET", false, true) if has("uploads") => "ListMultipartUploads",
        ("GET", false, true) if has("versions") => "ListObjectVersions",
        ("GET", false, true) if has("policy") => "GetBucketPolicy",
        ("GET", false, true) if has("tagging") => "GetBucketTagging",
        ("GET", false, true) if has("versioning") => "GetBucketVersioning",
        ("GET", false, true) if has("acl") => "GetBucketAcl",
        ("GET", false, true)
            if query.is_empty() || has("prefix") || has("marker") || has("delimiter") =>
        {
            "ListObjects"
        }
        ("PUT", false, true) if query.is_empty() => "CreateBucket",
        ("PUT", false, true) if has("policy") => "PutBucketPolicy",
        ("PUT", false, true) if has("tagging") => "PutBucketTagging",
        ("PUT", false, true) if has("versioning") => "PutBucketVersioning",
        ("DELETE", false, true) if query.is_empty() => "DeleteBucket",
        ("HEAD", false, true) => "HeadBucket",
        ("POST", false, true) if has("delete") => "DeleteObjects",
        // An object.
        ("PUT", false, false) if has("uploadId") && copy => "UploadPartCopy",
        ("PUT", false, false) if has("uploadId") => "UploadPart",
        ("PUT", false, false) if has("tagging") => "PutObjectTagging",
        ("PUT", false, false) if has("acl") => "PutObjectAcl",
        ("PUT", false, false) if copy => "CopyObject",
        ("PUT", false, false) if query.is_empty() => "PutObject",
        ("POST", false, false) if has("uploads") => "CreateMultipartUpload",
        ("POST", false, false) if has("uploadId") => "CompleteMultipartUpload",
        ("DELETE", false, false) if has("uploadId") => "AbortMultipartUpload",
        ("DELETE", false, false) if has("tagging") => "DeleteObjectTagging",
        ("DELETE", false, false) if query.is_empty() => "DeleteObject",
        ("GET", false, false) if has("uploadId") => "ListParts",
        ("GET", false, false) if has("tagging") => "GetObjectTagging",
        ("GET", false, false) if has("acl") => "GetObjectAcl",
        ("GET", false, false) if has("attributes") => "GetObjectAttributes",
        ("GET", false, false) => "GetObject",
        ("HEAD", false, false) => "HeadObject",
        _ => return None,
    })
}

/// The operations `x-id` is trusted to name (it is the command's to write: a name outside
/// this list is ignored, not recorded).
const KNOWN: [&str; 16] = [
    "GetObject",
    "PutObject",
    "DeleteObject",
    "DeleteObjects",
    "ListObjects",
    "ListObjectsV2",
    "ListBuckets",
    "UploadPart",
    "UploadPartCopy",
    "CopyObject",
    "CreateMultipartUpload",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "ListParts",
    "GetObjectAttributes",
    "ListObjectVersions",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn op(
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        service: &str,
        body: Option<&str>,
    ) -> String {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        let (parts, ()) = b.body(()).unwrap().into_parts();
        name(&parts, service, body.map(str::as_bytes))
    }

    #[test]
    fn s3_operations_are_told_by_method_path_and_sub_resource() {
        let s3 = |m, u| op(m, u, &[], "s3", None);
        assert_eq!(s3("GET", "/"), "ListBuckets");
        assert_eq!(s3("GET", "/b?list-type=2&prefix=x"), "ListObjectsV2");
        assert_eq!(s3("GET", "/b"), "ListObjects");
        assert_eq!(s3("GET", "/b?location"), "GetBucketLocation");
        assert_eq!(s3("PUT", "/b"), "CreateBucket");
        assert_eq!(s3("DELETE", "/b"), "DeleteBucket");
        assert_eq!(s3("HEAD", "/b"), "HeadBucket");
        assert_eq!(s3("POST", "/b?delete"), "DeleteObjects");
        assert_eq!(s3("PUT", "/b/k/with/slashes"), "PutObject");
        assert_eq!(s3("GET", "/b/k"), "GetObject");
        assert_eq!(s3("HEAD", "/b/k"), "HeadObject");
        assert_eq!(s3("DELETE", "/b/k"), "DeleteObject");
        assert_eq!(s3("POST", "/b/k?uploads"), "CreateMultipartUpload");
        assert_eq!(s3("PUT", "/b/k?partNumber=1&uploadId=u"), "UploadPart");
        assert_eq!(s3("POST", "/b/k?uploadId=u"), "CompleteMultipartUpload");
        assert_eq!(s3("DELETE", "/b/k?uploadId=u"), "AbortMultipartUpload");
        assert_eq!(s3("GET", "/b/k?uploadId=u"), "ListParts");
        assert_eq!(
            op("PUT", "/b/k", &[("x-amz-copy-source", "/a/b")], "s3", None),
            "CopyObject"
        );
        assert_eq!(s3("GET", "/b/k?x-id=GetObject"), "GetObject");
        // A name the command made up in x-id is not taken.
        assert_eq!(s3("GET", "/b/k?x-id=Anything"), "GET s3");
        assert_eq!(s3("PATCH", "/b/k"), "PATCH s3");
    }

    #[test]
    fn query_and_json_protocols_name_their_operation() {
        assert_eq!(
            op(
                "POST",
                "/",
                &[],
                "sts",
                Some("Action=GetCallerIdentity&Version=2011-06-15")
            ),
            "GetCallerIdentity"
        );
        assert_eq!(
            op(
                "GET",
                "/?Action=DescribeInstances&Version=2016-11-15",
                &[],
                "ec2",
                None
            ),
            "DescribeInstances"
        );
        assert_eq!(
            op(
                "POST",
                "/",
                &[("x-amz-target", "DynamoDB_20120810.GetItem")],
                "dynamodb",
                None
            ),
            "GetItem"
        );
        assert_eq!(
            op("GET", "/2015-03-31/functions/", &[], "lambda", None),
            "GET lambda"
        );
    }

    #[test]
    fn operations_that_mint_credentials_are_found_wherever_the_request_names_them() {
        let mints =
            |method: &str, uri: &str, headers: &[(&str, &str)], service, body: Option<&str>| {
                let mut b = http::Request::builder().method(method).uri(uri);
                for (n, v) in headers {
                    b = b.header(*n, *v);
                }
                let (parts, ()) = b.body(()).unwrap().into_parts();
                mints_credentials(&parts, service, body.map(str::as_bytes))
            };
        let form =
            Some("Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx&Version=2011-06-15");
        assert_eq!(
            mints("POST", "/", &[], "sts", form).as_deref(),
            Some("AssumeRole")
        );
        assert_eq!(
            mints(
                "GET",
                "/?Action=CreateAccessKey&Version=2010-05-08",
                &[],
                "iam",
                None
            )
            .as_deref(),
            Some("CreateAccessKey")
        );
        // A second Action hides nothing: every one counts.
        assert_eq!(
            mints(
                "POST",
                "/?Action=GetCallerIdentity",
                &[],
                "sts",
                Some("Action=GetSessionToken")
            )
            .as_deref(),
            Some("GetSessionToken")
        );
        assert_eq!(
            mints(
                "POST",
                "/",
                &[(
                    "x-amz-target",
                    "AWSCognitoIdentityService.GetOpenIdTokenForDeveloperIdentity"
                )],
                "cognito-identity",
                None
            )
            .as_deref(),
            Some("GetOpenIdTokenForDeveloperIdentity")
        );
        assert_eq!(
            mints(
                "GET",
                "/federation/credentials?role_name=r",
                &[],
                "awsssoportal",
                None
            )
            .as_deref(),
            Some("GetRoleCredentials")
        );
        for op in [
            "AssumeRoleWithSAML",
            "AssumeRoleWithWebIdentity",
            "AssumeRoot",
            "GetFederationToken",
        ] {
            assert!(
                mints("POST", "/", &[], "sts", Some(&format!("Action={op}"))).is_some(),
                "{op}"
            );
        }
        for op in [
            "CreateLoginProfile",
            "UpdateLoginProfile",
            "CreateServiceSpecificCredential",
            "ResetServiceSpecificCredential",
        ] {
            assert!(
                mints("POST", "/", &[], "iam", Some(&format!("Action={op}"))).is_some(),
                "{op}"
            );
        }
        // What does not hand out credentials passes, and S3's keys are only object names.
        assert_eq!(
            mints("POST", "/", &[], "sts", Some("Action=GetCallerIdentity")),
            None
        );
        assert_eq!(
            mints("POST", "/", &[], "iam", Some("Action=ListAccessKeys")),
            None
        );
        assert_eq!(
            mints("GET", "/b/AssumeRole?Action=AssumeRole", &[], "s3", None),
            None
        );
    }
}
