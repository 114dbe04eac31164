//! Search on 100 000 posts: seeds a private PostgreSQL cluster (the embedded one, as the
//! server runs it) with generated Chinese posts, their search text and codes made by the
//! server's own functions, then times the server's own search query
//! (`community::query_posts`, first page of 20, newest first) for kinds of query, one at a
//! time, and prints the percentiles. `scripts/bench/search.sh` runs it; `POSTS=…` and
//! `QUERIES=…` change the sizes.
//!
//! The corpus: words of one to four characters drawn from 2 049 common characters, word
//! frequencies Zipf-like (so a common character is in most posts, as in real Chinese),
//! titles of 4–30 characters, bodies of 20–800 (mean about 200), a Latin word in one post of
//! ten.

use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio_postgres::NoTls;
use zhifu::community::search::{self, Query};
use zhifu::community::{Filter, Sort, query_posts};
use zhifu::http::list::Paging;
use zhifu::store::embedded::{EmbeddedCluster, Options};

const CHARS: &str = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严首底液官德随病苏失尔死讲配女黄推显谈罪神艺呢席含企望密批营项防举球英氧势告李台落木帮轮破亚师围注远字材排供河态封另施减树溶怎止案言士均武固叶鱼波视仅费紧爱左章早朝害续轻服试食充兵源判护司足某练差致板田降黑犯负击范继兴似余坚曲输修故城夫够送笔船占右财吃富春职觉汉画功巴跟虽杂飞检吸助升阳互初创抗考投坏策古径换未跑留钢曾端责站简述钱副尽帝射草冲承独令限阿宣环双请超微让控州良轴找否纪益依优顶础载倒房突坐粉敌略客袁冷胜绝析块剂测丝协诉念陈仍罗盐友洋错苦夜刑移频逐靠混母短皮终聚汽村云哪既距卫停烈央察烧迅境若印洲刻括激孔搞甚室待核校散侵吧甲游久菜味旧模湖货损预阻毫普稳乙妈植息扩银语挥酒守拿序纸医缺雨吗针刘啊急唱误训愿审附获茶鲜粮斤孩脱硫肥善龙演父渐血欢械掌歌沙刚攻谓盾讨晚粒乱燃矛乎杀药宁鲁贵钟煤读班伯香介迫句丰培握兰担弦蛋沉假穿执答乐谁顺烟缩征脸喜松脚困异免背星福买染井概慢怕磁倍祖皇促静补评翻肉践尼衣宽扬棉希伤操垂秋宜氢套督振架亮末宪庆编牛触映雷销诗座居抓裂胞呼娘景威绿晶厚盟衡鸡孙延危胶屋乡临陆顾掉呀灯岁措束耐剧玉赵跳哥季课凯胡额款绍卷齐伟蒸殖永宗苗川炉岩弱零杨奏沿露杆探滑镇饭浓航怀赶库夺伊灵税途灭赛归召鼓播盘裁险康唯录菌纯借糖盖横符私努堂域枪润幅哈竟熟虫泽脑壤碳欧遍侧寨敢彻虑斜薄庭纳弹饲伸折麦湿暗荷瓦塞床筑恶户访塔奇透梁刀旋迹卡氯遇份毒泥退洗摆灰彩卖耗夏择忙铜献硬予繁圈雪函亦抽篇阵阴丁尺追堆雄迎泛爸楼避谋吨野猪旗累偏典馆索秦脂潮爷豆忽托惊塑遗愈朱替纤粗倾尚痛楚谢奋购磨君池旁碎骨监捕弟暴割贯殊释词亡壁顿宝午尘闻揭炮残冬桥妇警综招吴付浮遭徐您摇谷赞箱隔订男吹园纷唐败宋玻巨耕坦荣闭湾键凡驻锅救恩剥凝碱齿截炼麻纺禁废盛版缓净睛昌婚涉筒嘴插岸朗庄街藏姑贸腐奴啦惯乘伙恢匀纱扎辩耳彪臣亿璃抵脉秀萨俄网舞店喷纵寸汗挂洪贺闪柬爆烯津稻墙软勇像滚厘蒙芳肯坡柱荡腿仪旅尾轧冰贡登黎削钻勒逃障氨郭峰币港伏轨亩毕擦莫刺浪秘援株健售股岛甘泡睡童铸汤阀休汇舍牧绕炸哲磷绩朋淡尖启陷柴呈徒颜泪稍忘泵蓝拖洞授镜辛壮锋贫虚弯摩泰幼廷尊窗纲弄隶疑氏宫姐震瑞怪尤琴循描膜违夹腰缘珠穷森枝竹沟催绳忆邦剩幸浆栏拥牙贮礼滤钠纹罢拍咱喊袖埃勤罚焦潜伍墨欲缝姓刊饱仿奖铝鬼丽跨默挖链扫喝袋炭污幕诸弧励梅奶洁灾舟鉴苯讼抱毁懂寒智埔寄届跃渡挑丹艰贝碰拔爹戴码梦芽熔赤渔哭敬颗奔铅仲虎稀妹乏珍申桌遵允隆螺仓魏锐晓氮兼隐碍赫拨忠肃缸牵抢博巧壳兄杜讯诚碧祥柯页巡矩悲灌龄伦票寻桂铺圣恐恰郑趣抬荒腾贴柔滴猛阔辆妻填撤储签闹扰紫砂递戏吊陶伐喂疗瓶婆抚臂摸忍虾蜡邻胸巩挤偶弃槽劲乳邓吉仁烂砖租乌舰伴瓜浅丙暂燥橡柳迷暖牌秧胆详簧踏瓷谱呆宾糊洛辉愤竞隙怒粘乃绪肩籍敏涂熙皆侦悬掘享纠醒狂锁淀恨牲霸爬赏逆玩陵祝秒浙貌役彼悉鸭趋凤晨畜辈秩卵署梯炎滩棋驱筛峡冒啥寿译浸泉帽迟硅疆贷漏稿冠嫩胁芯牢叛蚀奥鸣岭羊凭串塘绘酵融盆锡庙筹冻辅摄袭筋拒僚旱钾鸟漆沈眉疏添棒穗硝韩逼扭侨凉挺碗栽炒杯患馏劝豪辽勃鸿旦吏拜狗埋辊掩饮搬骂辞勾扣估蒋绒雾丈朵姆拟宇辑陕雕偿蓄崇剪倡厅咬驶薯刷斥番赋奉佛浇漫曼扇钙桃扶仔返俗亏腔鞋棱覆框悄叔撞骗勘旺沸孤吐孟渠屈疾妙惜仰狠胀谐抛霉桑岗嘛衰盗渗脏赖涌甜曹阅肌哩厉烃纬毅昨伪症煮叹钉搭茎笼酷偷弓锥恒杰坑鼻翼纶叙狱逮罐络棚抑膨蔬寺骤穆冶枯册尸凸绅坯牺焰轰欣晋瘦御锭锦丧旬锻垄搜扑邀亭酯迈舒脆酶闲忧酚顽羽涨卸仗陪辟惩杭姚肚捉飘漂昆欺吾郎烷汁呵饰萧雅邮迁燕撒姻赴宴烦债帐斑铃旨醇董饼雏姿拌傅腹妥揉贤拆歪葡胺丢浩徽昂垫挡览贪慰缴汪慌冯诺姜谊凶劣诬耀昏躺盈骑乔溪丛卢抹闷咨刮驾缆悟摘铒掷颇幻柄惠惨佳仇腊窝涤剑瞧堡泼葱罩霍捞胎苍滨俩捅湘砍霞邵萄疯淮遂熊粪烘宿档戈驳嫂裕徙箭捐肠撑晒辨殿莲摊搅酱屏疫哀蔡堵沫皱畅叠阁莱敲辖钩痕坝巷饿祸丘玄溜曰逻彭尝卿妨艇吞韦怨矮歇";

/// A small deterministic generator (xorshift64*): the same corpus every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// An index in 0..n, index k about 1/(k+1) as likely as index 0.
    fn zipf(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (((n as f64 + 1.0).powf(u) - 1.0) as usize).min(n - 1)
    }
}

const LATIN: &[&str] = &[
    "python", "rust", "linux", "iphone", "campus", "wechat", "github", "coffee",
];

struct Corpus {
    words: Vec<String>,
}

impl Corpus {
    fn new(rng: &mut Rng) -> Corpus {
        let chars: Vec<char> = CHARS.chars().collect();
        let words = (0..4000)
            .map(|_| {
                let len = 1 + rng.below(4).min(rng.below(4));
                (0..len).map(|_| chars[rng.zipf(chars.len())]).collect()
            })
            .collect();
        Corpus { words }
    }

    fn text(&self, rng: &mut Rng, min: usize, max: usize) -> String {
        let target = min + rng.zipf(max - min);
        let mut out = String::new();
        while out.chars().count() < target {
            out.push_str(&self.words[rng.zipf(self.words.len())]);
            match rng.below(12) {
                0 => out.push('，'),
                1 => out.push('。'),
                _ => {}
            }
        }
        out
    }
}

const INSERT: &str = "INSERT INTO posts (id, board_id, author_id, title, content, search, grams, created_at)
   SELECT i, 1, 1, t, c, s, g::bigint[], at
     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[]) AS x(i, t, c, s, g, at)";

fn main() {
    let posts: usize = std::env::var("POSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let queries: usize = std::env::var("QUERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = std::env::temp_dir().join(format!("zhifu-bench-search-{}", std::process::id()));
    let cluster = EmbeddedCluster::start(&Options {
        data_dir: dir.clone(),
        bin_dir: None,
        ephemeral: true,
    })
    .expect("the bench cluster starts (are the PostgreSQL server binaries installed?)");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(&cluster, posts, queries));
    drop(cluster);
    if std::env::var_os("EXPLAIN").is_some() {
        println!("plans of slow queries: {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}

async fn run(cluster: &EmbeddedCluster, posts: usize, queries: usize) {
    zhifu::store::ensure_database(&cluster.pg_config("postgres"), "bench")
        .await
        .unwrap();
    let (mut client, conn) = cluster.pg_config("bench").connect(NoTls).await.unwrap();
    tokio::spawn(conn);
    zhifu::store::migrate::run(&mut client).await.unwrap();
    client
        .batch_execute(
            "INSERT INTO users (id, username, password_hash, display_name) VALUES (1, 'bench', 'x', 'bench')",
        )
        .await
        .unwrap();

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let corpus = Corpus::new(&mut rng);
    let started = Instant::now();
    // Bulk load without the search indexes, then build them (as a restore would).
    client
        .batch_execute("DROP INDEX posts_grams_idx; DROP INDEX posts_search_trgm_idx")
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let mut samples: Vec<String> = Vec::new();
    for chunk in (0..posts).collect::<Vec<_>>().chunks(2000) {
        let (mut ids, mut titles, mut contents, mut searches, mut grams, mut times) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for &i in chunk {
            let title = corpus.text(&mut rng, 4, 30);
            let mut content = corpus.text(&mut rng, 20, 800);
            if rng.below(10) == 0 {
                content.push_str(LATIN[rng.below(LATIN.len())]);
                content.push_str(&corpus.text(&mut rng, 5, 40));
            }
            let document = search::document(&title, &content);
            let codes = search::grams(&document);
            let codes = format!(
                "{{{}}}",
                codes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
            );
            if rng.below(50) == 0 {
                samples.push(content.clone());
            }
            ids.push(i as i64 + 1);
            titles.push(title);
            contents.push(content);
            searches.push(document);
            grams.push(codes);
            times.push(now - time::Duration::minutes((posts - i) as i64));
        }
        client
            .execute(INSERT, &[&ids, &titles, &contents, &searches, &grams, &times])
            .await
            .unwrap();
    }
    client
        .batch_execute(
            "INSERT INTO post_stats (post_id, board_id, created_at, likes, comments)
               SELECT id, board_id, created_at, (id * 7919) % 50, (id * 104729) % 20 FROM posts;
             CREATE INDEX posts_grams_idx ON posts USING gin (grams) WHERE deleted_at IS NULL AND hidden_at IS NULL;
             CREATE INDEX posts_search_trgm_idx ON posts USING gin (search gin_trgm_ops)
                 WHERE deleted_at IS NULL AND hidden_at IS NULL",
        )
        .await
        .unwrap();
    for table in ["posts", "post_stats"] {
        client.batch_execute(&format!("VACUUM ANALYZE {table}")).await.unwrap();
    }
    let size: String = client
        .query_one(
            "SELECT pg_size_pretty(pg_relation_size('posts_grams_idx')) || ' grams, '
                 || pg_size_pretty(pg_relation_size('posts_search_trgm_idx')) || ' trigrams, '
                 || pg_size_pretty(pg_total_relation_size('posts')) || ' posts in all'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    println!(
        "{posts} posts loaded and indexed in {:.1} s ({size})",
        started.elapsed().as_secs_f64()
    );

    // Queries people type: a common character, a two-character word of a post, a pair of
    // characters that may be nowhere, a longer phrase of a post, a Latin word.
    let chars: Vec<char> = CHARS.chars().collect();
    let substring = |rng: &mut Rng, len: usize| -> String {
        loop {
            let text: Vec<char> = samples[rng.below(samples.len())].chars().collect();
            if text.len() > len {
                let at = rng.below(text.len() - len);
                let piece: String = text[at..at + len].iter().collect();
                if !piece.contains(['，', '。']) {
                    return piece;
                }
            }
        }
    };
    let kinds: Vec<(&str, Vec<String>)> = vec![
        (
            "1 character",
            (0..queries).map(|_| chars[rng.zipf(chars.len())].to_string()).collect(),
        ),
        (
            "2 characters from a post",
            (0..queries).map(|_| substring(&mut rng, 2)).collect(),
        ),
        (
            "2 characters at random",
            (0..queries)
                .map(|_| format!("{}{}", chars[rng.below(chars.len())], chars[rng.below(chars.len())]))
                .collect(),
        ),
        (
            "4 characters from a post",
            (0..queries).map(|_| substring(&mut rng, 4)).collect(),
        ),
        (
            "a Latin word",
            (0..queries)
                .map(|_| LATIN[rng.below(LATIN.len())].to_string())
                .collect(),
        ),
    ];
    let store = zhifu::store::Store::connect(cluster.pg_config("bench"), 2, Duration::from_secs(5), None).unwrap();
    let pooled = store.client().await.unwrap();
    if std::env::var_os("EXPLAIN").is_some() {
        // The plans of slow queries go to the cluster's log (kept: see main).
        pooled
            .batch_execute(
                "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 20; SET auto_explain.log_analyze = on",
            )
            .await
            .unwrap();
    }
    let paging = Paging { page: 1, size: 20 };
    let mut all = Vec::new();
    println!(
        "\n{:<28} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "query (first page of 20)", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean total"
    );
    for (name, texts) in &kinds {
        let mut times = Vec::new();
        let mut hits = 0i64;
        for text in texts {
            let query = Query::parse(text).unwrap().unwrap();
            let filter = Filter {
                board_id: None,
                author_id: None,
                followed_by: None,
                query: Some(&query),
                since: OffsetDateTime::UNIX_EPOCH,
                sort: Sort::New,
                reveal: false,
            };
            let started = Instant::now();
            let (_, total, _) = query_posts(&pooled, &filter, paging).await.unwrap();
            times.push(started.elapsed());
            hits += total;
        }
        all.extend(times.iter().copied());
        print_row(name, &mut times, hits as f64 / texts.len() as f64);
    }
    print_row("all of them", &mut all, f64::NAN);
}

fn print_row(name: &str, times: &mut [Duration], hits: f64) {
    times.sort();
    let at =
        |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1].as_secs_f64() * 1000.0;
    println!(
        "{:<28} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>10.0}",
        name,
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0),
        hits
    );
}
