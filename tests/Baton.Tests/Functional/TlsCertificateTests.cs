using Baton.Tests.Infrastructure;

namespace Baton.Tests.Functional;

/// <summary>The gateway's certificate from a PKCS#12 file, and a certificate file that cannot be loaded at startup.</summary>
[Trait("Category", "Functional")]
public sealed class TlsCertificateTests : IAsyncLifetime
{
    private readonly string _folder = TestPaths.NewFolder("tls");
    private readonly List<TestBackend> _backends = [];

    public async Task InitializeAsync() => _backends.Add(await TestBackend.StartAsync("b1"));

    public async Task DisposeAsync()
    {
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }
    }

    [Fact]
    public async Task APasswordProtectedPkcs12File_IsServed_AndItsReplacementToo()
    {
        var path = Path.Combine(_folder, "gateway.pfx");
        using var first = TestCertificates.Create("baton-pfx-first");
        TestCertificates.WritePfx(first, path, "pfx-password");
        await using var gateway = await TestGateway.StartAsync(_backends,
            ["--urls=https://127.0.0.1:0", $"--Baton:Tls:CertificatePath={path}", "--Baton:Tls:Password=pfx-password", "--Baton:Tls:ReloadCheckInterval=00:00:00.200"]);

        Assert.Equal(Convert.ToHexString(first.GetCertHash()), await TestCertificates.ServedThumbprintAsync(gateway.Address));

        using var second = TestCertificates.Create("baton-pfx-second");
        TestCertificates.WritePfx(second, path, "pfx-password");
        await Eventually.TrueAsync(async () => await TestCertificates.ServedThumbprintAsync(gateway.Address) == Convert.ToHexString(second.GetCertHash()), TimeSpan.FromSeconds(15), "the replaced PKCS#12 file should be served");
    }

    [Fact]
    public async Task APemFileWithAByteOrderMarkAndOpensslBagAttributes_IsServed()
    {
        var certificatePath = Path.Combine(_folder, "gateway.crt");
        var keyPath = Path.Combine(_folder, "gateway.key");
        using var certificate = TestCertificates.Create("baton-bag-attributes");
        TestCertificates.WritePem(certificate, certificatePath, keyPath);
        var decorated = "\uFEFFBag Attributes\n    friendlyName: gateway\nsubject=/CN=baton-bag-attributes\n" + await File.ReadAllTextAsync(certificatePath);
        TestCertificates.Replace(certificatePath, System.Text.Encoding.UTF8.GetBytes(decorated));
        await using var gateway = await TestGateway.StartAsync(_backends,
            ["--urls=https://127.0.0.1:0", $"--Baton:Tls:CertificatePath={certificatePath}", $"--Baton:Tls:KeyPath={keyPath}"]);

        Assert.Equal(Convert.ToHexString(certificate.GetCertHash()), await TestCertificates.ServedThumbprintAsync(gateway.Address));
    }

    [Fact]
    public async Task APkcs12FileWithTheWrongPassword_StopsStartup_NamingTheSetting()
    {
        var path = Path.Combine(_folder, "gateway.pfx");
        using var certificate = TestCertificates.Create("baton-pfx");
        TestCertificates.WritePfx(certificate, path, "right-password");

        var error = await Assert.ThrowsAnyAsync<Exception>(() => TestGateway.StartAsync(_backends,
            ["--urls=https://127.0.0.1:0", $"--Baton:Tls:CertificatePath={path}", "--Baton:Tls:Password=wrong-password"]));
        Assert.Contains($"Baton:Tls: the certificate in '{path}' could not be loaded", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APemCertificateWithoutItsKey_StopsStartup_NamingTheSetting()
    {
        var path = Path.Combine(_folder, "gateway.crt");
        using var certificate = TestCertificates.Create("baton-pem");
        TestCertificates.Replace(path, System.Text.Encoding.ASCII.GetBytes(certificate.ExportCertificatePem()));

        var error = await Assert.ThrowsAnyAsync<Exception>(() => TestGateway.StartAsync(_backends,
            ["--urls=https://127.0.0.1:0", $"--Baton:Tls:CertificatePath={path}"]));
        Assert.Contains("Baton:Tls: the certificate", error.Message, StringComparison.Ordinal);
    }
}
