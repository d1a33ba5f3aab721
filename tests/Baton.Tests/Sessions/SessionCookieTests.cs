using Baton.Gateway.Sessions;
using Baton.Protocol;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Configuration;

namespace Baton.Tests.Sessions;

[Trait("Category", "Unit")]
public sealed class SessionCookieTests
{
    private const string Secret = "unit-test-secret-0123456789abcdef0123456789";
    private readonly SessionCookie _cookie = new(new ProtocolKeys(Secret));

    [Fact]
    public void Unprotect_OfProtect_GivesBackTheId()
    {
        var id = SessionId.New();

        var value = _cookie.Protect(id);

        Assert.Equal(SessionCookie.EncodedLength, value.Length);
        Assert.Equal(CookieVerdict.Valid, _cookie.Unprotect(value, out var parsed));
        Assert.Equal(id, parsed);
    }

    [Fact]
    public void Unprotect_AcceptsACookieFromAnotherGatewayWithTheSameSecret()
    {
        var value = new SessionCookie(new ProtocolKeys(Secret)).Protect(SessionId.New());

        Assert.Equal(CookieVerdict.Valid, _cookie.Unprotect(value, out _));
    }

    [Fact]
    public void Unprotect_RejectsACookieSignedWithAnotherSecret()
    {
        var value = new SessionCookie(new ProtocolKeys("some-other-secret-0123456789abcdef0123")).Protect(SessionId.New());

        Assert.Equal(CookieVerdict.BadSignature, _cookie.Unprotect(value, out var id));
        Assert.Equal(default, id);
    }

    [Fact]
    public void Unprotect_RejectsAnIdSwappedUnderAnotherIdsSignature()
    {
        var signed = _cookie.Protect(SessionId.New());
        var swapped = SessionId.New().Value + signed[SessionId.EncodedLength..];

        Assert.Equal(CookieVerdict.BadSignature, _cookie.Unprotect(swapped, out _));
    }

    [Theory]
    [InlineData(null, nameof(CookieVerdict.Missing))]
    [InlineData("", nameof(CookieVerdict.Missing))]
    [InlineData("garbage", nameof(CookieVerdict.Malformed))]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAA.", nameof(CookieVerdict.Malformed))]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA", nameof(CookieVerdict.Malformed))]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAA!!", nameof(CookieVerdict.Malformed))]
    [InlineData("AAAAAAAAAAAAAAAAAAAA+A.AAAAAAAAAAAAAAAAAAAAAA", nameof(CookieVerdict.Malformed))]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAA=A", nameof(CookieVerdict.Malformed))]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAB", nameof(CookieVerdict.Malformed))]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA", nameof(CookieVerdict.BadSignature))]
    public void Unprotect_ClassifiesWhatItIsGiven(string? value, string expected)
    {
        Assert.Equal(expected, _cookie.Unprotect(value, out _).ToString());
    }

    [Theory]
    [InlineData(null, false, false)]
    [InlineData(null, true, true)]
    [InlineData(CookieSecurePolicy.SameAsRequest, true, true)]
    [InlineData(CookieSecurePolicy.Always, false, true)]
    [InlineData(CookieSecurePolicy.None, true, false)]
    public void CreateOptions_IsSecureWhenTheRequestIsHttpsUnlessConfiguredOtherwise(CookieSecurePolicy? policy, bool https, bool secure)
    {
        var options = SessionCookie.CreateOptions(new SessionAffinityCookieConfig { SecurePolicy = policy }, https, DateTimeOffset.UnixEpoch);

        Assert.Equal(secure, options.Secure);
        Assert.True(options.HttpOnly);
        Assert.Equal(SameSiteMode.Lax, options.SameSite);
    }

    [Fact]
    public void CreateOptions_AlwaysHttpOnly_AndHonoursConfiguredAttributes()
    {
        var config = new SessionAffinityCookieConfig { SameSite = SameSiteMode.Strict, Path = "/shop", Domain = "example.test", Expiration = TimeSpan.FromHours(1) };

        var options = SessionCookie.CreateOptions(config, requestIsHttps: false, DateTimeOffset.UnixEpoch);

        Assert.True(options.HttpOnly);
        Assert.Equal(SameSiteMode.Strict, options.SameSite);
        Assert.Equal("/shop", options.Path);
        Assert.Equal("example.test", options.Domain);
        Assert.Equal(DateTimeOffset.UnixEpoch.AddHours(1), options.Expires);
    }
}
