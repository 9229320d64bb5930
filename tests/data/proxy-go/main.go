// A third SDK through `mfa-exec --proxy` (tests/proxy.rs): the AWS SDK for Go v2 with nothing
// but what mfa-exec puts in its environment (the run's keys, AWS_ENDPOINT_URL, AWS_REGION) calls
// STS GetCallerIdentity, S3 ListBuckets, PutObject and GetObject, and prints what came back.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func main() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	check(err)
	who, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	check(err)
	fmt.Println(aws.ToString(who.Arn))
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	buckets, err := client.ListBuckets(ctx, &s3.ListBucketsInput{})
	check(err)
	var names []string
	for _, b := range buckets.Buckets {
		names = append(names, aws.ToString(b.Name))
	}
	fmt.Println(strings.Join(names, " "))
	body := bytes.Repeat([]byte("go through the proxy "), 5000)
	_, err = client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("demo-reports"),
		Key:    aws.String("from-go.txt"),
		Body:   bytes.NewReader(body),
	})
	check(err)
	got, err := client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String("demo-reports"),
		Key:    aws.String("from-go.txt"),
	})
	check(err)
	back, err := io.ReadAll(got.Body)
	check(err)
	fmt.Println("round trip:", bytes.Equal(back, body), len(back))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "go client:", err)
		os.Exit(3)
	}
}
